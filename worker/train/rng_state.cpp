#include "worker/train/rng_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <mutex>
#include <stdexcept>

namespace sweep::train {
namespace {

std::string to_hex(const torch::Tensor& bytes) {
  static const char* kDigits = "0123456789abcdef";
  const auto* p = bytes.data_ptr<uint8_t>();
  std::string out;
  out.reserve(bytes.numel() * 2);
  for (int64_t i = 0; i < bytes.numel(); ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  throw std::runtime_error(std::string("rng.json: bad hex digit '") + c + "'");
}

torch::Tensor from_hex(const std::string& hex) {
  if (hex.size() % 2) throw std::runtime_error("rng.json: odd number of hex digits");
  torch::Tensor t = torch::empty({static_cast<int64_t>(hex.size() / 2)}, torch::kUInt8);
  auto* p = t.data_ptr<uint8_t>();
  for (size_t i = 0; i < hex.size(); i += 2)
    p[i / 2] = static_cast<uint8_t>(hex_value(hex[i]) * 16 + hex_value(hex[i + 1]));
  return t;
}

}  // namespace

nlohmann::json capture_rng_state(at::Generator lora_dropout) {
  nlohmann::json state;
  for (auto [key, gen] : {std::pair{"torch_cpu", at::detail::getDefaultCPUGenerator()},
                          std::pair{"lora_dropout", lora_dropout}}) {
    if (!gen.defined()) continue;
    std::lock_guard<std::mutex> lock(gen.mutex());
    state[key] = to_hex(gen.get_state());
  }
  return state;
}

void restore_rng_state(const nlohmann::json& state, at::Generator lora_dropout) {
  if (!state.is_object() || !state.contains("torch_cpu") || !state.at("torch_cpu").is_string())
    throw std::runtime_error(
        "rng.json: missing \"torch_cpu\" (was the checkpoint written by sweep-worker?)");
  auto gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(from_hex(state.at("torch_cpu").get<std::string>()));
  }
  if (lora_dropout.defined() && state.contains("lora_dropout")) {
    if (!state.at("lora_dropout").is_string())
      throw std::runtime_error("rng.json: \"lora_dropout\" is not a string");
    std::lock_guard<std::mutex> lock(lora_dropout.mutex());
    lora_dropout.set_state(from_hex(state.at("lora_dropout").get<std::string>()));
  }
}

}  // namespace sweep::train
