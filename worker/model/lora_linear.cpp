#include "worker/model/lora_linear.h"

#include <cmath>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>

#include "worker/model/dropout_mask.h"
#include "worker/model/parameter_placement.h"

namespace sweep::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The adapter's term, (x * mask) A^T B^T * scaling, as one autograd node instead of the seven
// that casts, the dropout multiply, two linears and the scaling multiply make (and their views):
// a training step has 28 of these on a small model, where per-operator cost is most of the time.
// The arithmetic is the composite's, operation for operation: x cast to the adapter's dtype,
// times the mask, two matrix products, times scaling, cast to `out_dtype`; the backward is the
// chain rule of the same products. Inputs: x [..., in], mask with x's elements,
// A [r, in], B [out, r]; the result is [..., out] in `out_dtype`. Without dropout the mask is an
// empty tensor (a custom Function's inputs must be defined).
class LoraBranch : public torch::autograd::Function<LoraBranch> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& mask, const torch::Tensor& a_weight,
                               const torch::Tensor& b_weight, double scaling, int64_t out_dtype) {
    const int64_t in = x.size(-1), out = b_weight.size(0);
    torch::Tensor h = x.to(a_weight.scalar_type()).reshape({-1, in});  // [N, in]
    const bool dropout = mask.numel() > 0;
    if (dropout) h = h * mask.reshape({-1, in});
    torch::Tensor a = torch::mm(h, a_weight.t());                    // [N, r]
    torch::Tensor delta = torch::mm(a, b_weight.t()).mul_(scaling);  // [N, out]
    ctx->save_for_backward({h, a, a_weight, b_weight, mask});
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["x_shape"] = x.sizes().vec();
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = out;
    return delta.to(static_cast<torch::ScalarType>(out_dtype)).view(shape);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &h = saved[0], &a = saved[1], &a_weight = saved[2], &b_weight = saved[3],
                        &mask = saved[4];
    const double scaling = ctx->saved_data["scaling"].toDouble();
    // d delta: [N, out] in the adapter's dtype, scaled as the forward scaled.
    torch::Tensor g =
        grads[0].reshape({-1, b_weight.size(0)}).to(a_weight.scalar_type()).mul(scaling);
    torch::Tensor grad_b, grad_a, grad_x;
    if (ctx->needs_input_grad(3)) grad_b = torch::mm(g.t(), a);   // [out, r]
    torch::Tensor ga = torch::mm(g, b_weight);                    // [N, r]
    if (ctx->needs_input_grad(2)) grad_a = torch::mm(ga.t(), h);  // [r, in]
    if (ctx->needs_input_grad(0)) {
      grad_x = torch::mm(ga, a_weight);  // [N, in]
      if (mask.numel() > 0) grad_x.mul_(mask.reshape(grad_x.sizes()));
      grad_x = grad_x.to(static_cast<torch::ScalarType>(ctx->saved_data["x_dtype"].toInt()))
                   .view(ctx->saved_data["x_shape"].toIntVector());
    }
    return {grad_x, torch::Tensor(), grad_a, grad_b, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

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
  if (pack_route_ && !pack_route_->members.empty()) {
    // One GEMM for the frozen weight over every member's rows, then each member's adapter on its
    // own rows. A 3-d input is split by samples, a 2-d one (forward_rows) by rows.
    const PackRoute& route = *pack_route_;
    const bool by_rows = x.dim() == 2;
    const std::vector<int64_t>& sizes = by_rows ? route.rows : route.samples;
    const std::vector<torch::Tensor> parts = x.split_with_sizes(sizes, 0);
    std::vector<torch::Tensor> deltas;
    deltas.reserve(parts.size());
    for (size_t i = 0; i < parts.size(); ++i)
      deltas.push_back(pack_peers_.at(route.members[i])
                           ->branch(parts[i], by_rows ? -1 : route.lengths[i], y.scalar_type()));
    return y + torch::cat(deltas, 0);
  }
  if (!has_lora()) return y;
  return y + branch(x, -1, y.scalar_type());
}

torch::Tensor LoraLinearImpl::lora_delta(const torch::Tensor& x, int64_t length) {
  return branch(x, length, lora_A->weight.scalar_type());
}

torch::Tensor LoraLinearImpl::branch(const torch::Tensor& x, int64_t length,
                                     torch::ScalarType out_dtype) {
  // The adapter runs in its own (fp32) precision even when the frozen base is bf16 (PEFT).
  const torch::TensorOptions adapter = x.options().dtype(lora_A->weight.scalar_type());
  const double p = lora_options_.dropout;
  torch::Tensor mask = torch::empty({0}, adapter);
  if (lora_dropout && is_training() && p > 0) {
    // F::dropout's distribution (keep with 1 - p, scale by 1 / (1 - p)); on the CPU from the
    // job's own generator (dropout_mask.h), on a GPU from the device's.
    std::vector<int64_t> shape = x.sizes().vec();
    const bool padded = length >= 0 && x.dim() == 3 && length < shape[1];
    if (padded) shape[1] = length;
    if (dropout_generator_.defined() && x.device().is_cpu()) {
      mask = dropout_mask(shape, p, dropout_generator_, adapter);
    } else {
      mask = torch::empty(shape, adapter).bernoulli_(1 - p);
      mask.div_(1 - p);
    }
    if (padded) {  // pack padding: any value will do, the positions are masked out
      shape[1] = x.size(1) - length;
      mask = torch::cat({mask, torch::ones(shape, adapter)}, 1);
    }
  }
  return LoraBranch::apply(x, mask, lora_A->weight, lora_B->weight, lora_options_.scaling(),
                           static_cast<int64_t>(out_dtype));
}

void LoraLinearImpl::set_pack(std::vector<LoraLinearImpl*> peers, const PackRoute* route) {
  pack_peers_ = std::move(peers);
  pack_route_ = route;
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
