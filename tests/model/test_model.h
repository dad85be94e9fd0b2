// Helpers shared by the model tests: a very small LLaVA config and deterministic inputs.
#pragma once

#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "worker/model/llava.h"
#include "worker/model/lora.h"
#include "worker/model/tensor_roles.h"

namespace sweep::model::testing {

// 4 image tokens (16x16 image, patch 8), 2 CLIP layers, GQA text model with 2 layers.
inline LlavaConfig micro_config(int64_t vocab = 50) {
  LlavaConfig c = preset_config("tiny", vocab);
  c.vision.hidden_size = 16;
  c.vision.intermediate_size = 32;
  c.vision.num_attention_heads = 2;
  c.vision.image_size = 16;
  c.vision.patch_size = 8;
  c.text.hidden_size = 32;
  c.text.intermediate_size = 64;
  c.text.num_hidden_layers = 2;
  c.text.num_attention_heads = 4;
  c.text.num_key_value_heads = 2;
  c.text.head_dim = 8;
  c.validate();
  return c;
}

// The micro model with LoRA (r 4, alpha 8, `dropout`) on every projection, in `dtype` on `device`,
// B drawn at random so A gets a gradient; the projector trains.
inline LlavaForConditionalGeneration lora_micro_model(torch::Dtype dtype, double dropout = 0.0,
                                                      torch::Device device = torch::kCPU) {
  LlavaForConditionalGeneration m(micro_config(), /*seed=*/3);
  LoraSettings s;
  s.r = 4;
  s.alpha = 8;
  s.dropout = dropout;
  apply_lora(m, s, /*seed=*/5);
  m->to_precision(dtype, device);
  torch::NoGradGuard no_grad;
  torch::manual_seed(11);
  for (auto& item : m->named_parameters())
    if (classify(item.key()).role == TensorRole::kLoraB)
      item.value().copy_(torch::randn_like(item.value()) * 0.05);
  return m;
}

inline std::string temp_dir(const std::string& name) {
  return ::testing::TempDir() + "model_" + std::to_string(::getpid()) + "_" + name;
}

// Two samples: one with an image placeholder, one text-only; labels supervise the tail.
inline MultimodalInputs sample_batch(const LlavaConfig& c, uint64_t seed = 1) {
  torch::manual_seed(seed);
  MultimodalInputs in;
  in.input_ids = {{1, 5, kImageTokenIndex, 7, 8, 9, 10}, {1, 11, 12, 13}};
  in.labels = {{kIgnoreIndex, kIgnoreIndex, kIgnoreIndex, kIgnoreIndex, 8, 9, 10},
               {kIgnoreIndex, kIgnoreIndex, 12, 13}};
  in.pixel_values = torch::randn({2, 3, c.image_size(), c.image_size()});
  in.pixel_values[1].zero_();
  in.has_image = {true, false};
  return in;
}

inline torch::Tensor logits_of(LlavaForConditionalGeneration m, const MultimodalInputs& in) {
  torch::NoGradGuard no_grad;
  return m->forward(m->splice(in, 64));
}

}  // namespace sweep::model::testing
