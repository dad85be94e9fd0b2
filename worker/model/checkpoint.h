// Hugging Face LLaVA checkpoints: config.json + model.safetensors (or sharded
// model-0000N-of-0000M.safetensors with model.safetensors.index.json).
// Reads the llava-hf layout, the transformers >= 4.52 layout and the original LLaVA names
// (docs/model.md); writes the llava-hf layout.
#pragma once

#include <map>
#include <string>

#include <torch/types.h>

#include "worker/model/llava.h"
#include "worker/model/tensor_roles.h"  // canonical_tensor_name

namespace sweep::model {

// Reads config.json and all weights. Throws one std::runtime_error listing every missing,
// unexpected and mis-shaped tensor (after name mapping), naming the directory.
LlavaForConditionalGeneration load_llava(const std::string& model_dir, torch::Dtype base_dtype,
                                         torch::Device device);
// Loads `tensors` (any accepted layout) into `m`; same error contract as load_llava. `source`
// names the checkpoint in messages.
void load_llava_weights(LlavaForConditionalGeneration& m,
                        const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& source);
// config.json + model.safetensors with tensor names in `layout` (tensor_roles.h), base weights
// in their current dtype, LoRA adapters excluded (merge first to include them). Written to
// DIR.tmp-* and renamed over DIR.
void save_llava(LlavaForConditionalGeneration& m, const std::string& dir,
                TensorLayout layout = TensorLayout::kLlavaHf);
// The layout of the checkpoint in a model directory (its tensor names; the files are mapped, not
// read).
TensorLayout layout_of_model_dir(const std::string& model_dir);

}  // namespace sweep::model
