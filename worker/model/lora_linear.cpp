#include "worker/model/lora_linear.h"

#include <cmath>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>

#include "worker/model/parameter_placement.h"

namespace sweep::model {

double LoraAdapterOptions::scaling() const {
  return use_rslora ? alpha / std::sqrt(double(r)) : alpha / double(r);
}

LoraLinearImpl::LoraLinearImpl(int64_t in_features, int64_t out_features, bool bias)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", new_parameter({out_features, in_features}));
  if (bias) this->bias = register_parameter("bias", new_parameter({out_features}));
  if (!drawing_parameters()) return;  // a loader fills them
  torch::NoGradGuard no_grad;
  weight.normal_(0.0, 0.02);
  if (bias) this->bias.zero_();
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::nn::functional::linear(x, weight, bias);
  if (!has_lora()) return y;
  // The adapter runs in its own (fp32) precision even when the frozen base is bf16 (PEFT).
  torch::Tensor h = x.to(lora_A->weight.scalar_type());
  if (lora_dropout) h = lora_dropout->forward(h);
  torch::Tensor delta = lora_B->forward(lora_A->forward(h)) * lora_options_.scaling();
  return y + delta.to(y.scalar_type());
}

void LoraLinearImpl::attach_lora(const LoraAdapterOptions& options, uint64_t seed) {
  if (has_lora()) throw std::runtime_error("LoRA adapter attached twice to the same module");
  if (options.r <= 0) throw std::runtime_error("LoRA rank r must be positive");
  lora_options_ = options;
  auto a = torch::nn::Linear(torch::nn::LinearOptions(in_features_, options.r).bias(false));
  auto b = torch::nn::Linear(torch::nn::LinearOptions(options.r, out_features_).bias(false));
  {
    torch::NoGradGuard no_grad;
    // kaiming_uniform_(a=sqrt(5)) on A [r, in] is U(-1/sqrt(in), 1/sqrt(in)); drawn from a private
    // generator so adapters are reproducible without touching the global RNG.
    double bound = 1.0 / std::sqrt(double(in_features_));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    a->weight.uniform_(-bound, bound, gen);
    b->weight.zero_();
  }
  a->to(weight.device(), torch::kFloat32);
  b->to(weight.device(), torch::kFloat32);
  if (weight.scalar_type() == torch::kFloat64) {  // double-precision test models stay double
    a->to(torch::kFloat64);
    b->to(torch::kFloat64);
  }
  lora_A = register_module("lora_A", a);
  lora_B = register_module("lora_B", b);
  if (options.dropout > 0)
    lora_dropout = register_module("lora_dropout", torch::nn::Dropout(options.dropout));
}

void LoraLinearImpl::merge_lora() {
  if (!has_lora()) return;
  torch::NoGradGuard no_grad;
  auto A = lora_A->weight.to(torch::kFloat32);  // [r, in]
  auto B = lora_B->weight.to(torch::kFloat32);  // [out, r]
  if (weight.scalar_type() == torch::kFloat64) {
    A = lora_A->weight.to(torch::kFloat64);
    B = lora_B->weight.to(torch::kFloat64);
  }
  auto merged = weight.to(A.scalar_type()) + torch::matmul(B, A) * lora_options_.scaling();
  weight.copy_(merged.to(weight.scalar_type()));
  unregister_module("lora_A");
  unregister_module("lora_B");
  if (lora_dropout) unregister_module("lora_dropout");
  lora_A = nullptr;
  lora_B = nullptr;
  lora_dropout = nullptr;
}

}  // namespace sweep::model
