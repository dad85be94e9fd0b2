// `sweep-worker merge CKPT --base DIR --out DIR [--dtype fp32|bf16]`: folds a LoRA checkpoint
// (adapter + projector) into its base model, in fp32, and writes a Hugging Face model directory
// in the base's tensor layout with the weights in --dtype (config.json, model.safetensors and
// the files of train::copy_model_companions). --base defaults to the adapter's
// base_model_name_or_path.
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

constexpr const char* kUsage =
    "usage: sweep-worker merge CHECKPOINT [--base MODEL_DIR] --out DIR [--dtype fp32|bf16] "
    "[--threads N]";

std::string base_of(const std::string& ckpt) {
  std::ifstream in(ckpt + "/adapter_config.json");
  if (!in) return "";
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j.value("base_model_name_or_path", "") : "";
}

}  // namespace

int cmd_merge(const Args& args) {
  return train::run_tool("merge", [&]() -> int {
    train::ToolArgs a("merge", args, {"base", "out", "threads", "dtype"}, kUsage);
    if (a.positionals().size() != 1) {
      std::cerr << kUsage << "\n";
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
    const std::string dtype = a.get("dtype", "fp32");
    if (dtype != "fp32" && dtype != "bf16")
      throw std::invalid_argument("--dtype must be fp32 or bf16, got '" + dtype + "'");
    model::merge_lora(m);
    // The projector too: a merged model is read whole in one dtype.
    if (dtype == "bf16") m->to(torch::kBFloat16);
    model::save_llava(m, out, model::layout_of_model_dir(base));  // names as the base has them
    train::copy_model_companions(base, out, m->config());
    std::cout << std::filesystem::absolute(out).string() << "\n";
    return kExitOk;
  });
}

}  // namespace sweep::worker
