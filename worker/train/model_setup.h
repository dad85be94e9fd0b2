// Shared by the job runner and the model tools (predict, score, merge): the device and dtype a
// job asks for, its LoRA settings, and loading a base model with an optional checkpoint on top.
#pragma once

#include <string>

#include <torch/types.h>

#include "protocol/train_params.h"
#include "worker/model/llava.h"
#include "worker/model/lora.h"

namespace sweep::train {

// "cpu" or "cuda"; throws std::invalid_argument when CUDA is asked for but not available.
torch::Device resolve_device(const std::string& name);
// The CPU computes bf16 products natively (x86 AVX512-BF16 or AMX-BF16, from CPUID), so a bf16
// matrix product costs less than an fp32 one (oneDNN's bf16 GEMM) instead of more.
bool cpu_has_fast_bf16();
// precision auto: bf16 on CUDA and on CPUs with fast bf16 (unless SWEEP_CPU_FP32 is set), else
// fp32; fp32 / bf16 as given. The LoRA weights and their optimizer state stay fp32 either way.
torch::Dtype resolve_base_dtype(const std::string& precision, torch::Device device);

model::LoraSettings lora_settings_from(const TrainParams& p, const std::string& base_model);

// True when `dir` holds a PEFT adapter (adapter_config.json); false for a full model directory.
bool is_adapter_checkpoint(const std::string& dir);

// The base model from `model_dir`, then `checkpoint` on top when not empty: an adapter directory
// (adapter + projector loaded, not merged) or a full-mode checkpoint (its weights replace the
// base). Throws std::runtime_error naming the directory at fault. An adapter is first checked
// against the base (check_checkpoint_base, checkpoint_manifest.h): a BaseMismatchError when its
// manifest names another base, with `base_flag` (the option that chose the base) in the hint; an
// empty `base_flag` skips the check (the caller made it).
model::LlavaForConditionalGeneration load_model_with_checkpoint(
    const std::string& model_dir, const std::string& checkpoint, torch::Dtype dtype,
    torch::Device device, const std::string& base_flag = "--model");

// The files beside the weights that make `dir` a directory Hugging Face's loaders open
// (docs/model.md, "Files"): tokenizer.model (required) and the tokenizer, processor, chat
// template and generation files of `model_dir` where it has them; generation_config.json,
// preprocessor_config.json (CLIPImageProcessor), tokenizer_config.json and
// special_tokens_map.json written from `config` where it has not.
void copy_model_companions(const std::string& model_dir, const std::string& dir,
                           const model::LlavaConfig& config);
// The written half of copy_model_companions alone (init-model and make-builtin outputs).
void write_missing_model_files(const std::string& dir, const model::LlavaConfig& config);

}  // namespace sweep::train
