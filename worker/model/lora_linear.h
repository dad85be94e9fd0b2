// A Linear layer that can carry a PEFT-style LoRA adapter. Every projection in the model is one of
// these, so the frozen weight keeps its Hugging Face name (`...q_proj.weight`) and an attached
// adapter appears beside it as `...q_proj.lora_A.weight` / `...q_proj.lora_B.weight`, exactly the
// PEFT key suffixes (PEFT's in-memory `base_layer.` level is not reproduced; see docs/model.md).
#pragma once

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace sweep::model {

struct LoraAdapterOptions {
  int64_t r = 8;
  double alpha = 16;
  double dropout = 0.0;
  bool use_rslora = false;
  // alpha / r, or alpha / sqrt(r) with use_rslora (PEFT).
  double scaling() const;
};

class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(int64_t in_features, int64_t out_features, bool bias);

  // y = x W^T + b  [+ lora_B(lora_A(dropout(x))) * scaling, computed in the adapter's dtype
  // (fp32 unless the model was converted to double) and cast back to x's dtype].
  torch::Tensor forward(const torch::Tensor& x);

  // Attaches a fresh adapter: A [r, in] kaiming-uniform(a=sqrt(5)) from `seed`, B [out, r] zeros,
  // both fp32 on the weight's device. Throws if one is attached already.
  void attach_lora(const LoraAdapterOptions& options, uint64_t seed);
  bool has_lora() const { return !lora_A.is_empty(); }
  const LoraAdapterOptions& lora_options() const { return lora_options_; }
  // W <- W + scaling * B @ A (in fp32, cast back to W's dtype); removes the adapter.
  void merge_lora();

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  torch::Tensor weight;               // [out, in]
  torch::Tensor bias;                 // [out] or undefined
  torch::nn::Linear lora_A{nullptr};  // in -> r, no bias
  torch::nn::Linear lora_B{nullptr};  // r -> out, no bias
  torch::nn::Dropout lora_dropout{nullptr};

 private:
  int64_t in_features_;
  int64_t out_features_;
  LoraAdapterOptions lora_options_;
};
TORCH_MODULE(LoraLinear);

}  // namespace sweep::model
