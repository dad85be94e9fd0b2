// AdamW over flat buffers. A LoRA job trains many small tensors (56 on the tiny model, 448 on a
// 7B one), and torch::optim::AdamW spends seven operators on each per step, zero_grad two more
// and clip_grad_norm_ two more: on a small model most of that is per-operator cost, not
// arithmetic. Here the tensors of each param group that share a dtype and device are views into
// one contiguous buffer (up to 2^26 elements each by default), and so are their gradients and both
// moments, so the update is seven operators per buffer, zeroing one, and clipping one norm per
// tensor (summed as clip_grad_norm_ sums them) and one scale per buffer.
//
// The arithmetic per element is torch::optim::AdamW's and clip_grad_norm_'s, operation for
// operation, so parameters after any number of steps are bit-identical to theirs
// (tests/train/flat_adamw_test.cpp). The state is kept in AdamW's own per-tensor form (each
// moment a view into its buffer), so optimizer.pt is written and read as before. One semantic
// point: a gradient is zeroed, never set to none, so a tensor that took no part in a step still
// moves by its momentum, as after torch::optim::AdamW's own zero_grad, which zeroes too.
#pragma once

#include <vector>

#include <torch/optim/adamw.h>

namespace sweep::train {

class FlatAdamW : public torch::optim::AdamW {
 public:
  // Every parameter must require grad; their current values and gradients (if any) are kept.
  // A buffer holds at most `max_buffer_elements` (a larger tensor has one of its own).
  FlatAdamW(std::vector<torch::optim::OptimizerParamGroup> param_groups,
            torch::optim::AdamWOptions defaults, int64_t max_buffer_elements = int64_t(1) << 26);
  FlatAdamW(std::vector<torch::Tensor> params, torch::optim::AdamWOptions defaults)
      : FlatAdamW({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

  torch::Tensor step(LossClosure closure = nullptr) override;
  // Zeroes every gradient buffer, one operator each (Optimizer::zero_grad is not virtual and
  // zeroes tensor by tensor: call this one).
  void zero_grad();
  // torch::nn::utils::clip_grad_norm_ (2-norm) over every parameter of the optimizer, bit for
  // bit: scales the gradients by min(1, max_norm / (norm + 1e-6)), returns the norm before.
  double clip_grad_norm(double max_norm);

  // AdamW::load, then the loaded moments are copied into the buffers.
  void load(torch::serialize::InputArchive& archive) override;

 private:
  // The tensors of one group with one dtype and device, and their buffers.
  struct Chunk {
    size_t group = 0;
    int64_t elements = 0;
    std::vector<torch::Tensor> params;
    std::vector<int64_t> offsets;  // of each parameter in the buffers
    torch::Tensor param, grad, exp_avg, exp_avg_sq;
  };

  void build_chunks();
  // Points every parameter, gradient and moment at its place in new buffers for `c`, keeping
  // their values (a tensor with no state yet gets a fresh one, zero moments at step 0).
  void bind(Chunk& c);
  // Whether a parameter or its gradient was replaced since bind (module->to(), a loader).
  bool bound(const Chunk& c) const;
  torch::optim::AdamWParamState& state_of(const torch::Tensor& p);

  int64_t max_buffer_elements_;
  std::vector<Chunk> chunks_;
};

}  // namespace sweep::train
