// `sweep merge CHECKPOINT [--base MODEL_DIR] [--dtype fp32|bf16|fp16] [--verify-samples K]
// [--data VAL.json --image-folder DIR] --out DIR`: folds a LoRA checkpoint (adapter + projector)
// into the base model's full weights in fp32, casts them to --dtype, and verifies the written
// model against the adapter on its base before it gets the name --out (docs/worker.md, "Verified
// merge"). The tensor work is sweep-worker's (`sweep` never links LibTorch), so this runs
// `sweep-worker merge` with the same arguments and its exit code.
#include <iostream>
#include <string>
#include <utility>
#include <vector>

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
  int verify_samples = 0;  // 0: the worker's default
  std::string data;
  std::string image_folder;
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
  if (f.verify_samples > 0)
    args.insert(args.end(), {"--verify-samples", std::to_string(f.verify_samples)});
  const std::vector<std::pair<std::string, std::string>> paths = {
      {"--data", f.data}, {"--image-folder", f.image_folder}};
  for (const auto& flag_value : paths) {
    const std::string& value = flag_value.second;
    if (value.empty()) continue;
    Result<std::string> path = capture(
        [&] { return data::is_builtin(value) ? data::resolve_builtin_data(value) : value; });
    if (!path) return ctx.fail(with_context(path.error(), flag_value.first));
    args.insert(args.end(), {flag_value.first, *path});
  }
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
                  "dtype of the written weights: fp32 (default), bf16 or fp16 (the merge itself "
                  "runs in fp32)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  cmd->add_option("--verify-samples", flags->verify_samples,
                  "val samples the merged model is checked on against the adapter (default 8)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--data", flags->data,
                  "val data to check on (default: the job's, from the checkpoint's manifest)");
  cmd->add_option("--image-folder", flags->image_folder, "image folder of --data");
  cmd->callback([flags, &ctx] { merge_command(*flags, ctx); });
}

}  // namespace sweep
