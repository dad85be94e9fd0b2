// `sweep merge CHECKPOINT [--base MODEL_DIR] [--dtype fp32|bf16] --out DIR`: folds a LoRA
// checkpoint (adapter + projector) into the base model's full weights. The tensor work is
// sweep-worker's (`sweep` never links LibTorch), so this runs `sweep-worker merge` with the same
// arguments and its exit code.
#include <iostream>

#include <boost/process.hpp>

#include "common/failure.h"
#include "data/builtin.h"
#include "orchestrator/cli/commands.h"
#include "orchestrator/run/prepare.h"

namespace bp = boost::process;

namespace sweep {

namespace {

struct MergeFlags {
  std::string checkpoint;
  std::string base;
  std::string out;
  std::string dtype;
};

void merge_command(const MergeFlags& f, CliContext& ctx) {
  std::string worker = default_worker_path(self_exe_dir());
  std::vector<std::string> args{"merge", f.checkpoint, "--out", f.out};
  if (!f.base.empty()) {
    Result<std::string> base = capture(
        [&] { return data::is_builtin(f.base) ? data::builtin_model_dir(f.base) : f.base; });
    if (!base) return ctx.fail(with_context(base.error(), "--base"));
    args.insert(args.end(), {"--base", *base});
  }
  if (!f.dtype.empty()) args.insert(args.end(), {"--dtype", f.dtype});
  try {
    int code = bp::system(bp::exe = worker, bp::args = args);
    ctx.exit_code = code;
  } catch (const std::exception& e) {
    ctx.fail(make_error(ErrorKind::kNotFound, "cannot run " + worker + ": " + e.what(),
                        "build sweep-worker beside sweep, or set $SWEEP_WORKER"));
  }
}

}  // namespace

void add_merge_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<MergeFlags>();
  CLI::App* cmd = app.add_subcommand("merge", "Merge a LoRA checkpoint into full model weights");
  cmd->add_option("checkpoint", flags->checkpoint, "checkpoint directory (see `sweep best`)")
      ->required();
  cmd->add_option("--base", flags->base, "base model directory (default: the one the job used)");
  cmd->add_option("--out", flags->out, "output directory")->required();
  cmd->add_option("--dtype", flags->dtype,
                  "dtype of the written weights: fp32 (default) or bf16 (the merge itself runs in "
                  "fp32)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  cmd->callback([flags, &ctx] { merge_command(*flags, ctx); });
}

}  // namespace sweep
