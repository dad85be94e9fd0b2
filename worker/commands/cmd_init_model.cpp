// `sweep-worker init-model --preset tiny|small --out DIR [--seed N] [--vocab-size N]
// [--config CONFIG.json] [--threads N] [--device cpu|cuda] [--precision fp32|bf16]`: writes a
// randomly initialised LLaVA in the Hugging Face layout (config.json + model.safetensors).
// --config takes any LLaVA config.json instead of a preset (the same code builds LLaVA-1.5-7B
// from its config); --device cuda draws the weights on the GPU (a 7B model in seconds; other
// numbers than the CPU's for the same seed), --precision bf16 writes the frozen parts in bf16.
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>

#include <torch/torch.h>

#include "worker/commands/commands.h"
#include "worker/model/checkpoint.h"
#include "worker/model/llava.h"
#include "worker/train/model_setup.h"
#include "worker/train/tool_args.h"

namespace sweep::worker {
namespace {

constexpr const char* kUsage =
    "usage: sweep-worker init-model (--preset tiny|small | --config CONFIG.json) --out DIR "
    "[--seed N] [--vocab-size N] [--threads N] [--device cpu|cuda] [--precision fp32|bf16]";

model::LlavaConfig config_from(const train::ToolArgs& a) {
  if (a.has("config")) return model::LlavaConfig::load_file(a.get("config"));
  if (!a.has("preset")) throw std::invalid_argument("--preset or --config is required");
  const int vocab = a.get_int("vocab-size", 512);
  if (vocab < 3) throw std::invalid_argument("--vocab-size must be at least 3 (unk, bos, eos)");
  return model::preset_config(a.get("preset"), vocab);
}

}  // namespace

int cmd_init_model(const Args& args) {
  return train::run_tool("init-model", [&]() -> int {
    train::ToolArgs a(
        "init-model", args,
        {"preset", "out", "seed", "vocab-size", "config", "threads", "device", "precision"},
        kUsage);
    if (!a.positionals().empty()) {
      std::cerr << kUsage << "\n";
      return kExitBadInput;
    }
    const std::string out = a.required("out");
    model::LlavaConfig config = config_from(a);
    torch::set_num_threads(std::max(1, a.get_int("threads", 1)));
    const int seed = a.get_int("seed", 0);
    if (seed < 0) throw std::invalid_argument("--seed must be >= 0, got " + std::to_string(seed));
    const torch::Device device = train::resolve_device(a.get("device", "cpu"));
    const std::string precision = a.get("precision", "fp32");
    if (precision != "fp32" && precision != "bf16")
      throw std::invalid_argument("--precision must be fp32 or bf16, got '" + precision + "'");
    const torch::Dtype dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
    model::LlavaForConditionalGeneration m = model::empty_llava(config, dtype, device);
    m->init_weights(static_cast<uint64_t>(seed));
    model::save_llava(m, out);
    train::write_missing_model_files(out, config);
    std::cerr << model::model_summary(m) << "\n";
    std::cout << std::filesystem::absolute(out).string() << "\n";
    return kExitOk;
  });
}

}  // namespace sweep::worker
