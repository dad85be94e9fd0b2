// `sweep-worker merge CKPT --base DIR --out DIR [--dtype fp32|bf16|fp16] [--verify-samples K]`:
// folds a LoRA checkpoint (adapter + projector) into its base model in fp32, casts the weights to
// --dtype, writes a Hugging Face model directory in the base's tensor layout (config.json,
// model.safetensors and the files of train::copy_model_companions) into a temp directory beside
// --out, verifies it (train::verify_merge: reload, logits and val_loss on K val samples against
// the adapter on the base) and renames it to --out only when every figure is within the dtype's
// tolerance. --base defaults to the base named by the checkpoint's manifest, else by its
// adapter_config.json; an adapter trained on another base is refused.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "worker/commands/commands.h"
#include "worker/model/checkpoint.h"
#include "worker/model/lora.h"
#include "worker/train/checkpoint_manifest.h"
#include "worker/train/merge_verify.h"
#include "worker/train/model_setup.h"
#include "worker/train/tool_args.h"

namespace sweep::worker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: sweep-worker merge CHECKPOINT [--base MODEL_DIR] --out DIR [--dtype fp32|bf16|fp16] "
    "[--verify-samples K] [--data VAL.json --image-folder DIR] [--threads N]";

std::string base_of(const std::string& ckpt) {
  if (auto manifest = train::read_manifest(ckpt)) return train::manifest_base_path(*manifest, ckpt);
  std::ifstream in(ckpt + "/adapter_config.json");
  if (!in) return "";
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j.value("base_model_name_or_path", "") : "";
}

void write_merged(const std::string& ckpt, const std::string& base, const std::string& dtype,
                  const std::string& dir) {
  model::LlavaForConditionalGeneration m = train::load_model_with_checkpoint(
      base, ckpt, torch::kFloat32, torch::kCPU, /*base_flag=*/"");  // checked by the caller
  model::merge_lora(m);
  // The projector too: a merged model is read whole in one dtype.
  if (dtype == "bf16") m->to(torch::kBFloat16);
  if (dtype == "fp16") m->to(torch::kFloat16);
  model::save_llava(m, dir, model::layout_of_model_dir(base));  // names as the base has them
  train::copy_model_companions(base, dir, m->config());
}

// Moves `from` to `to`, replacing a directory already there.
void rename_over(const fs::path& from, const fs::path& to) {
  const fs::path old = to.string() + ".old-" + std::to_string(::getpid());
  if (fs::exists(to)) fs::rename(to, old);
  fs::rename(from, to);
  fs::remove_all(old);
}

}  // namespace

int cmd_merge(const Args& args) {
  return train::run_tool("merge", [&]() -> int {
    train::ToolArgs a("merge", args,
                      {"base", "out", "threads", "dtype", "verify-samples", "data", "image-folder"},
                      kUsage);
    if (a.positionals().size() != 1) {
      std::cerr << kUsage << "\n";
      return kExitBadInput;
    }
    const std::string ckpt = a.positionals()[0], out = a.required("out");
    const std::string base = a.get("base", base_of(ckpt));
    if (base.empty()) {
      std::cerr << "merge: --base is required (" << ckpt
                << " has no manifest.json and its adapter_config.json names no "
                   "base_model_name_or_path)\n";
      return kExitBadInput;
    }
    const std::string dtype = a.get("dtype", "fp32");
    train::merge_tolerance(dtype);  // rejects an unknown dtype before any work
    train::MergeCheckInputs check = merge_check_inputs(a, ckpt, base, dtype);
    torch::set_num_threads(a.get_int("threads", 1));
    if (train::is_adapter_checkpoint(ckpt))
      train::check_checkpoint_base(ckpt, base, "--base", std::cerr);

    fs::path target = fs::absolute(fs::path(out).lexically_normal());
    if (target.filename().empty()) target = target.parent_path();
    const fs::path tmp = target.string() + ".merging-" + std::to_string(::getpid());
    fs::remove_all(tmp);
    write_merged(ckpt, base, dtype, tmp.string());
    check.merged_dir = tmp.string();
    const train::MergeCheck result = train::verify_merge(check);
    std::cout << result.report();
    if (!result.ok()) {
      fs::remove_all(tmp);
      std::cerr << "sweep-worker merge: the merged model does not match the adapter on its base ("
                << result.failures.front() << "); nothing was written to " << target.string()
                << "\n  hint: merge with --dtype fp32, or check the base (--base)\n";
      return kExitBadInput;
    }
    rename_over(tmp, target);
    std::cout << target.string() << "\n";
    return kExitOk;
  });
}

}  // namespace sweep::worker
