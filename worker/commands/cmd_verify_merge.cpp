// `sweep-worker verify-merge MERGED_DIR --adapter CKPT [--base DIR] [--dtype fp32|bf16|fp16]
// [--verify-samples K] [--data VAL.json --image-folder DIR]`: the check `merge` runs on its
// output (train::verify_merge), on any merged directory: prints the figures, exit 0 when every
// one is within the dtype's tolerance, 1 when not.
#include <filesystem>
#include <iostream>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "worker/commands/commands.h"
#include "worker/train/checkpoint_manifest.h"
#include "worker/train/merge_verify.h"
#include "worker/train/model_setup.h"
#include "worker/train/tool_args.h"

namespace sweep::worker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: sweep-worker verify-merge MERGED_DIR --adapter CKPT [--base MODEL_DIR] "
    "[--dtype fp32|bf16|fp16] [--verify-samples K] [--data VAL.json --image-folder DIR] "
    "[--threads N]";

}  // namespace

train::MergeCheckInputs merge_check_inputs(const train::ToolArgs& a, const std::string& ckpt,
                                           const std::string& base, const std::string& dtype) {
  train::MergeCheckInputs in;
  in.checkpoint = ckpt;
  in.base_dir = base;
  in.dtype = dtype;
  in.samples = a.get_int("verify-samples", 8);
  if (in.samples < 1)
    throw std::invalid_argument("--verify-samples must be at least 1, got " +
                                std::to_string(in.samples));
  in.val_data = a.get("data");
  in.image_folder = a.get("image-folder");
  if (std::optional<nlohmann::json> manifest = train::read_manifest(ckpt)) {
    const nlohmann::json params = manifest->value("params", nlohmann::json::object());
    in.seed = params.value("seed", uint64_t{0});
    in.max_length = params.value("model_max_length", int64_t{2048});
    in.pad_to_square = params.value("image_aspect_ratio", std::string("pad")) == "pad";
    const nlohmann::json data = manifest->value("data", nlohmann::json::object());
    const nlohmann::json val = data.value("val", nlohmann::json());
    if (in.val_data.empty() && val.is_object()) {
      const std::string path = val.value("path", "");
      if (fs::exists(path)) {
        in.val_data = path;
        if (in.image_folder.empty()) in.image_folder = data.value("image_folder", "");
      } else if (!path.empty()) {
        std::cerr << "sweep-worker: notice: the job's val data " << path
                  << " is gone: the merge is checked on synthetic sequences (give --data and "
                     "--image-folder to check on val samples)\n";
      }
    }
  }
  if (!in.val_data.empty() && in.image_folder.empty())
    throw std::invalid_argument("--data " + in.val_data + " needs --image-folder");
  return in;
}

int cmd_verify_merge(const Args& args) {
  return train::run_tool("verify-merge", [&]() -> int {
    train::ToolArgs a(
        "verify-merge", args,
        {"adapter", "base", "dtype", "verify-samples", "data", "image-folder", "threads"}, kUsage);
    if (a.positionals().size() != 1) {
      std::cerr << kUsage << "\n";
      return kExitBadInput;
    }
    const std::string merged = a.positionals()[0], ckpt = a.required("adapter");
    std::string base = a.get("base");
    if (base.empty()) {
      if (auto manifest = train::read_manifest(ckpt))
        base = train::manifest_base_path(*manifest, ckpt);
    }
    if (base.empty())
      throw std::invalid_argument("--base is required (" + ckpt + " has no manifest.json)");
    const std::string dtype = a.get("dtype", "fp32");
    train::merge_tolerance(dtype);
    train::MergeCheckInputs in = merge_check_inputs(a, ckpt, base, dtype);
    in.merged_dir = merged;
    torch::set_num_threads(a.get_int("threads", 1));
    if (train::is_adapter_checkpoint(ckpt))
      train::check_checkpoint_base(ckpt, base, "--base", std::cerr);
    const train::MergeCheck result = train::verify_merge(in);
    std::cout << result.report();
    if (result.ok()) return kExitOk;
    std::cerr << "sweep-worker verify-merge: " << merged
              << " does not match the adapter on its base:";
    for (const std::string& f : result.failures) std::cerr << "\n  " << f;
    std::cerr << "\n";
    return kExitBadInput;
  });
}

}  // namespace sweep::worker
