// A Linear layer that can carry a PEFT-style LoRA adapter. Every projection in the model is one of
// these, so the frozen weight keeps its Hugging Face name (`...q_proj.weight`) and an attached
// adapter appears beside it as `...q_proj.lora_A.weight` / `...q_proj.lora_B.weight`, exactly the
// PEFT key suffixes (PEFT's in-memory `base_layer.` level is not reproduced; see docs/model.md).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <ATen/core/Generator.h>
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

class LoraLinearImpl;

// A packed forward (worker/model/pack.h): the rows of the input belong to several jobs, in order,
// and each job's rows go through that job's adapter. `members[i]` indexes the peers of every
// packed LoraLinear; `samples[i]` is its number of samples along dim 0 of a [B, T, in] input,
// `lengths[i]` its own padded length (<= T; positions past it are padding added by the pack) and
// `rows[i]` its number of rows in a [N, in] input (the supervised rows of forward_rows).
struct PackRoute {
  std::vector<size_t> members;
  std::vector<int64_t> samples, lengths, rows;
};

class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(int64_t in_features, int64_t out_features, bool bias);

  // y = x W^T + b  [+ lora_B(lora_A(dropout(x))) * scaling, computed in the adapter's dtype
  // (fp32 unless the model was converted to double) and cast back to x's dtype].
  torch::Tensor forward(const torch::Tensor& x);
  // The adapter's term alone: lora_B(lora_A(dropout(x))) * scaling in the adapter's dtype. With
  // dropout, a [B, T, in] input whose positions from `length` on are pack padding draws its mask
  // for [B, length, in] only, so the job draws the numbers it would draw alone.
  torch::Tensor lora_delta(const torch::Tensor& x, int64_t length = -1);

  // Attaches a fresh adapter: A [r, in] kaiming-uniform(a=sqrt(5)) from `seed`, B [out, r] zeros,
  // both fp32 on the weight's device. Throws if one is attached already.
  void attach_lora(const LoraAdapterOptions& options, uint64_t seed);
  bool has_lora() const { return !lora_A.is_empty(); }
  const LoraAdapterOptions& lora_options() const { return lora_options_; }
  // W <- W + scaling * B @ A (in fp32, cast back to W's dtype); removes the adapter.
  void merge_lora();

  // Dropout masks from `generator` (a per-job CPU generator, so that jobs sharing a process do not
  // share a random stream); undefined: LibTorch's default generator. CUDA tensors always use the
  // device's default generator.
  void set_dropout_generator(at::Generator generator) { dropout_generator_ = std::move(generator); }
  const at::Generator& dropout_generator() const { return dropout_generator_; }

  // Packing: while `route` (owned by the caller, outliving the forward) lists members, forward
  // adds peers[route->members[i]]'s adapter term to member i's rows instead of its own.
  void set_pack(std::vector<LoraLinearImpl*> peers, const PackRoute* route);

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  torch::Tensor weight;               // [out, in]
  torch::Tensor bias;                 // [out] or undefined
  torch::nn::Linear lora_A{nullptr};  // in -> r, no bias
  torch::nn::Linear lora_B{nullptr};  // r -> out, no bias
  torch::nn::Dropout lora_dropout{nullptr};

 private:
  // lora_delta cast to `out_dtype`, as one autograd node (lora_linear.cpp).
  torch::Tensor branch(const torch::Tensor& x, int64_t length, torch::ScalarType out_dtype);

  int64_t in_features_;
  int64_t out_features_;
  LoraAdapterOptions lora_options_;
  at::Generator dropout_generator_;
  std::vector<LoraLinearImpl*> pack_peers_;
  const PackRoute* pack_route_ = nullptr;
};
TORCH_MODULE(LoraLinear);

}  // namespace sweep::model
