#include "worker/train/model_setup.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include <ATen/Context.h>
#include <torch/cuda.h>
#include <nlohmann/json.hpp>

#include "common/file_system.h"
#include "data/image.h"
#include "worker/model/checkpoint.h"
#include "worker/train/checkpoint_manifest.h"

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

bool cpu_has_fast_bf16() {
  if (!at::hasMKLDNN()) return false;  // LibTorch's own bf16 GEMM is slower than fp32
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amx_bf16 = edx & (1u << 22);
  const bool avx512f = ebx & (1u << 16);
  if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return amx_bf16;
  const bool avx512_bf16 = eax & (1u << 5);
  return amx_bf16 || (avx512f && avx512_bf16);
#else
  return false;
#endif
}

torch::Dtype resolve_base_dtype(const std::string& precision, torch::Device device) {
  if (precision == "fp32") return torch::kFloat32;
  if (precision == "bf16") return torch::kBFloat16;
  if (device.is_cuda()) return torch::kBFloat16;
  static const bool fast_bf16 = cpu_has_fast_bf16() && !std::getenv("SWEEP_CPU_FP32");
  return fast_bf16 ? torch::kBFloat16 : torch::kFloat32;
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
                                                                torch::Device device,
                                                                const std::string& base_flag) {
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
  if (!base_flag.empty()) check_checkpoint_base(checkpoint, model_dir, base_flag, std::cerr);
  model::LlavaForConditionalGeneration m = model::load_llava(model_dir, dtype, device);
  model::load_adapter(m, checkpoint, /*seed=*/0);
  m->to_precision(dtype, device);
  return m;
}

namespace {

void write_json(const fs::path& path, const nlohmann::json& j) {
  write_file_atomic(path.string(), j.dump(2) + "\n");
}

// What transformers' CLIPImageProcessor does to an image, as data/image.h does it (LLaVA-1.5
// pads to a square before; that step belongs to the caller, as in LLaVA's own scripts).
nlohmann::json clip_image_processor(int64_t image_size) {
  const auto& m = data::kClipMean;
  const auto& s = data::kClipStd;
  return {{"image_processor_type", "CLIPImageProcessor"},
          {"do_resize", true},
          {"size", {{"shortest_edge", image_size}}},
          {"resample", 3},  // bicubic
          {"do_center_crop", true},
          {"crop_size", {{"height", image_size}, {"width", image_size}}},
          {"do_rescale", true},
          {"rescale_factor", 1.0 / 255.0},
          {"do_normalize", true},
          {"image_mean", {m[0], m[1], m[2]}},
          {"image_std", {s[0], s[1], s[2]}},
          {"do_convert_rgb", true}};
}

}  // namespace

void copy_model_companions(const std::string& model_dir, const std::string& dir,
                           const model::LlavaConfig& config) {
  const fs::path from = fs::path(model_dir), to = fs::path(dir);
  if (fs::is_directory(from) && !fs::exists(from / "tokenizer.model"))
    throw std::runtime_error(model_dir + " has no tokenizer.model to copy");
  for (const char* name :
       {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "preprocessor_config.json", "processor_config.json",
        "generation_config.json", "chat_template.json", "chat_template.jinja"}) {
    if (!fs::exists(from / name)) continue;
    std::error_code ec;
    fs::copy_file(from / name, to / name, fs::copy_options::overwrite_existing, ec);
    if (ec)
      throw std::runtime_error("cannot copy " + (from / name).string() + " to " + dir + ": " +
                               ec.message());
  }
  write_missing_model_files(dir, config);
}

void write_missing_model_files(const std::string& dir, const model::LlavaConfig& config) {
  const fs::path to = fs::path(dir);
  const model::TextConfig& t = config.text;
  if (!fs::exists(to / "generation_config.json"))
    write_json(to / "generation_config.json", {{"bos_token_id", t.bos_token_id},
                                               {"eos_token_id", t.eos_token_id},
                                               {"pad_token_id", t.pad_token_id}});
  if (!fs::exists(to / "preprocessor_config.json"))
    write_json(to / "preprocessor_config.json", clip_image_processor(config.vision.image_size));
  if (!fs::exists(to / "tokenizer_config.json")) {
    // LLaMA's slow SentencePiece tokenizer as LLaVA-1.5 trained with it (legacy handling of the
    // text after special tokens, which data/tokenizer.cpp reproduces).
    write_json(to / "tokenizer_config.json", {{"tokenizer_class", "LlamaTokenizer"},
                                              {"bos_token", "<s>"},
                                              {"eos_token", "</s>"},
                                              {"unk_token", "<unk>"},
                                              {"pad_token", "<unk>"},
                                              {"add_bos_token", true},
                                              {"add_eos_token", false},
                                              {"legacy", true},
                                              {"model_max_length", t.max_position_embeddings}});
  }
  if (!fs::exists(to / "special_tokens_map.json"))
    write_json(to / "special_tokens_map.json", {{"bos_token", "<s>"},
                                                {"eos_token", "</s>"},
                                                {"unk_token", "<unk>"},
                                                {"pad_token", "<unk>"}});
}

}  // namespace sweep::train
