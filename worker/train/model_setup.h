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
// precision auto: bf16 on CUDA, fp32 on the CPU; fp32 / bf16 as given.
torch::Dtype resolve_base_dtype(const std::string& precision, torch::Device device);

model::LoraSettings lora_settings_from(const TrainParams& p, const std::string& base_model);

// True when `dir` holds a PEFT adapter (adapter_config.json); false for a full model directory.
bool is_adapter_checkpoint(const std::string& dir);

// The base model from `model_dir`, then `checkpoint` on top when not empty: an adapter directory
// (adapter + projector loaded, not merged) or a full-mode checkpoint (its weights replace the
// base). Throws std::runtime_error naming the directory at fault.
model::LlavaForConditionalGeneration load_model_with_checkpoint(const std::string& model_dir,
                                                                const std::string& checkpoint,
                                                                torch::Dtype dtype,
                                                                torch::Device device);

// Copies <model_dir>/tokenizer.model into `dir` (a model directory needs one).
void copy_tokenizer(const std::string& model_dir, const std::string& dir);

}  // namespace sweep::train
