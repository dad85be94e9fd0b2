#include "worker/train/model_setup.h"

#include <filesystem>
#include <stdexcept>

#include <torch/cuda.h>

#include "worker/model/checkpoint.h"

namespace sweep::train {
namespace fs = std::filesystem;

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available())
      throw std::invalid_argument(
          "device cuda requested but this LibTorch has no usable CUDA device (check "
          "CUDA_VISIBLE_DEVICES, or run with device cpu)");
    return torch::Device(torch::kCUDA, 0);
  }
  throw std::invalid_argument("unknown device '" + name + "': use cpu or cuda");
}

torch::Dtype resolve_base_dtype(const std::string& precision, torch::Device device) {
  if (precision == "fp32") return torch::kFloat32;
  if (precision == "bf16") return torch::kBFloat16;
  return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
}

model::LoraSettings lora_settings_from(const TrainParams& p, const std::string& base_model) {
  model::LoraSettings s;
  s.r = p.lora_r;
  s.alpha = p.lora_alpha;
  s.dropout = p.lora_dropout;
  s.target_modules = p.target_modules;
  s.use_rslora = p.use_rslora;
  s.include_vision_tower = p.lora_vision_tower;
  s.rank_pattern = p.rank_pattern;
  s.alpha_pattern = p.alpha_pattern;
  s.base_model_name_or_path = base_model;
  return s;
}

bool is_adapter_checkpoint(const std::string& dir) {
  return fs::exists(fs::path(dir) / "adapter_config.json");
}

model::LlavaForConditionalGeneration load_model_with_checkpoint(const std::string& model_dir,
                                                                const std::string& checkpoint,
                                                                torch::Dtype dtype,
                                                                torch::Device device) {
  if (checkpoint.empty()) return model::load_llava(model_dir, dtype, device);
  if (!fs::is_directory(checkpoint))
    throw std::runtime_error("checkpoint " + checkpoint + " is not a directory");
  if (!is_adapter_checkpoint(checkpoint)) {
    if (!fs::exists(fs::path(checkpoint) / "config.json"))
      throw std::runtime_error("checkpoint " + checkpoint +
                               " has neither adapter_config.json (LoRA) nor config.json (full): "
                               "give a step-N directory of a run's checkpoints/");
    return model::load_llava(checkpoint, dtype, device);
  }
  model::LlavaForConditionalGeneration m = model::load_llava(model_dir, dtype, device);
  model::load_adapter(m, checkpoint, /*seed=*/0);
  m->to_precision(dtype, device);
  return m;
}

void copy_tokenizer(const std::string& model_dir, const std::string& dir) {
  const fs::path from = fs::path(model_dir) / "tokenizer.model";
  if (fs::is_directory(model_dir) && !fs::exists(from))
    throw std::runtime_error(model_dir + " has no tokenizer.model to copy");
  std::error_code ec;
  fs::copy_file(from, fs::path(dir) / "tokenizer.model", fs::copy_options::overwrite_existing, ec);
  if (ec)
    throw std::runtime_error("cannot copy " + from.string() + " to " + dir + ": " + ec.message());
}

}  // namespace sweep::train
