// `sweep-worker init-model --preset tiny|small --out DIR [--seed N] [--vocab-size N]
// [--config CONFIG.json] [--threads N]`: writes a randomly initialised LLaVA in the Hugging Face
// layout (config.json + model.safetensors). --config takes any LLaVA config.json instead of a
// preset (the same code builds LLaVA-1.5-7B from its config).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "worker/commands/commands.h"
#include "worker/model/checkpoint.h"
#include "worker/model/llava.h"

namespace sweep::worker {
namespace {

constexpr const char* kUsage =
    "usage: sweep-worker init-model (--preset tiny|small | --config CONFIG.json) --out DIR "
    "[--seed N] [--vocab-size N] [--threads N]";

std::map<std::string, std::string> parse_options(const Args& args) {
  static const char* known[] = {"--preset", "--out", "--seed", "--vocab-size", "--config", "--threads"};
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < args.size(); i += 2) {
    bool ok = false;
    for (const char* k : known) ok = ok || args[i] == k;
    if (!ok) throw std::invalid_argument("init-model: unknown option '" + args[i] + "'");
    if (i + 1 >= args.size()) throw std::invalid_argument("init-model: " + args[i] + " needs a value");
    out[args[i].substr(2)] = args[i + 1];
  }
  return out;
}

int64_t to_int(const std::map<std::string, std::string>& o, const std::string& key, int64_t fallback) {
  auto it = o.find(key);
  if (it == o.end()) return fallback;
  try {
    size_t used = 0;
    int64_t v = std::stoll(it->second, &used);
    if (used == it->second.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("init-model: --" + key + " must be a non-negative integer, got '" + it->second + "'");
}

model::LlavaConfig config_from(const std::map<std::string, std::string>& o) {
  if (o.count("config")) {
    std::ifstream in(o.at("config"));
    if (!in) throw std::invalid_argument("init-model: cannot read " + o.at("config"));
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw std::invalid_argument("init-model: " + o.at("config") + " is not valid JSON");
    return model::LlavaConfig::from_json(j);
  }
  if (!o.count("preset")) throw std::invalid_argument("init-model: --preset or --config is required");
  int64_t vocab = to_int(o, "vocab-size", 512);
  if (vocab < 3) throw std::invalid_argument("init-model: --vocab-size must be at least 3 (unk, bos, eos)");
  return model::preset_config(o.at("preset"), vocab);
}

}  // namespace

int cmd_init_model(const Args& args) {
  try {
    auto o = parse_options(args);
    if (!o.count("out")) throw std::invalid_argument("init-model: --out is required");
    model::LlavaConfig config = config_from(o);
    torch::set_num_threads(int(std::max<int64_t>(1, to_int(o, "threads", 1))));
    model::LlavaForConditionalGeneration m(config, uint64_t(to_int(o, "seed", 0)));
    model::save_llava(m, o.at("out"));
    std::cerr << model::model_summary(m) << "\n";
    std::cout << std::filesystem::absolute(o.at("out")).string() << "\n";
    return kExitOk;
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << "\n" << kUsage << "\n";
    return kExitBadInput;
  } catch (const std::runtime_error& e) {
    std::cerr << "init-model: " << e.what() << "\n";
    return kExitBadInput;
  }
}

}  // namespace sweep::worker
