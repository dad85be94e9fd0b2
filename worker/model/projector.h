// LLaVA's mlp2x_gelu projector (llava-hf LlavaMultiModalProjector): linear_1 -> act -> linear_2,
// mapping CLIP features to the LLM width. Kept in fp32 (it is trained) whatever the base dtype.
#pragma once

#include <string>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "worker/model/lora_linear.h"

namespace sweep::model {

class MultiModalProjectorImpl : public torch::nn::Module {
 public:
  MultiModalProjectorImpl(int64_t vision_hidden, int64_t text_hidden, std::string act);
  torch::Tensor forward(const torch::Tensor& x);  // [N, P, Dv] -> [N, P, H], in the weights' dtype
  LoraLinear linear_1{nullptr}, linear_2{nullptr};

 private:
  std::string act_;
};
TORCH_MODULE(MultiModalProjector);

}  // namespace sweep::model
