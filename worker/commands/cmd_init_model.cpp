// `sweep-worker init-model --preset tiny|small --out DIR [--seed N] [--vocab-size N]
// [--config CONFIG.json] [--threads N]`: writes a randomly initialised LLaVA in the Hugging Face
// layout (config.json + model.safetensors). --config takes any LLaVA config.json instead of a
// preset (the same code builds LLaVA-1.5-7B from its config).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "worker/commands/commands.h"
#include "worker/model/checkpoint.h"
#include "worker/model/llava.h"
#include "worker/train/tool_args.h"

namespace sweep::worker {
namespace {

constexpr const char* kUsage =
    "usage: sweep-worker init-model (--preset tiny|small | --config CONFIG.json) --out DIR "
    "[--seed N] [--vocab-size N] [--threads N]";

model::LlavaConfig config_from(const train::ToolArgs& a) {
  if (a.has("config")) {
    const std::string path = a.get("config");
    std::ifstream in(path);
    if (!in) throw std::invalid_argument("cannot read " + path);
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw std::invalid_argument(path + " is not valid JSON");
    return model::LlavaConfig::from_json(j);
  }
  if (!a.has("preset")) throw std::invalid_argument("--preset or --config is required");
  const int vocab = a.get_int("vocab-size", 512);
  if (vocab < 3) throw std::invalid_argument("--vocab-size must be at least 3 (unk, bos, eos)");
  return model::preset_config(a.get("preset"), vocab);
}

}  // namespace

int cmd_init_model(const Args& args) {
  return train::run_tool("init-model", [&]() -> int {
    train::ToolArgs a("init-model", args,
                      {"preset", "out", "seed", "vocab-size", "config", "threads"});
    if (!a.positionals().empty()) {
      std::cerr << kUsage << "\n";
      return kExitBadInput;
    }
    const std::string out = a.required("out");
    model::LlavaConfig config = config_from(a);
    torch::set_num_threads(std::max(1, a.get_int("threads", 1)));
    const int seed = a.get_int("seed", 0);
    if (seed < 0) throw std::invalid_argument("--seed must be >= 0, got " + std::to_string(seed));
    model::LlavaForConditionalGeneration m(config, static_cast<uint64_t>(seed));
    model::save_llava(m, out);
    std::cerr << model::model_summary(m) << "\n";
    std::cout << std::filesystem::absolute(out).string() << "\n";
    return kExitOk;
  });
}

}  // namespace sweep::worker
