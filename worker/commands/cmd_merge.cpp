// `sweep-worker merge CKPT --base DIR --out DIR`: folds a LoRA checkpoint (adapter + projector)
// into its base model and writes a plain Hugging Face model directory (config.json,
// model.safetensors, tokenizer.model). --base defaults to the adapter's base_model_name_or_path.
#include <filesystem>
#include <fstream>
#include <iostream>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "worker/commands/commands.h"
#include "worker/model/checkpoint.h"
#include "worker/model/lora.h"
#include "worker/train/model_setup.h"
#include "worker/train/tool_args.h"

namespace sweep::worker {
namespace {

std::string base_of(const std::string& ckpt) {
  std::ifstream in(ckpt + "/adapter_config.json");
  if (!in) return "";
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j.value("base_model_name_or_path", "") : "";
}

}  // namespace

int cmd_merge(const Args& args) {
  return train::run_tool("merge", [&]() -> int {
    train::ToolArgs a("merge", args, {"base", "out", "threads"});
    if (a.positionals().size() != 1) {
      std::cerr << "usage: sweep-worker merge CHECKPOINT --base MODEL_DIR --out DIR\n";
      return kExitBadInput;
    }
    const std::string ckpt = a.positionals()[0], out = a.required("out");
    const std::string base = a.get("base", base_of(ckpt));
    if (base.empty()) {
      std::cerr << "merge: --base is required (" << ckpt
                << "/adapter_config.json names no base_model_name_or_path)\n";
      return kExitBadInput;
    }
    torch::set_num_threads(a.get_int("threads", 1));
    model::LlavaForConditionalGeneration m =
        train::load_model_with_checkpoint(base, ckpt, torch::kFloat32, torch::kCPU);
    model::merge_lora(m);
    model::save_llava(m, out);
    train::copy_tokenizer(base, out);
    std::cout << std::filesystem::absolute(out).string() << "\n";
    return kExitOk;
  });
}

}  // namespace sweep::worker
