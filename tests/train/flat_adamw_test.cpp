// FlatAdamW against torch::optim::AdamW and clip_grad_norm_: the same parameters after every
// clipped step and the same clipping (bit for bit), and optimizer state that either of them reads
// from the other's file.
#include "worker/train/flat_adamw.h"

#include <sstream>

#include <gtest/gtest.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/serialize.h>

namespace sweep::train {
namespace {

using torch::optim::AdamWOptions;
using torch::optim::OptimizerParamGroup;

// Odd sizes, so no tensor fills whole vector registers, in two groups with their own options.
std::vector<torch::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> ps;
  for (auto shape : {std::vector<int64_t>{3, 5}, {7}, {4, 9}, {1}, {13, 3}})
    ps.push_back(torch::randn(shape).requires_grad_());
  return ps;
}

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_());
  return out;
}

std::vector<OptimizerParamGroup> groups_of(const std::vector<torch::Tensor>& ps) {
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{ps[0], ps[1], ps[2]},
                      std::make_unique<AdamWOptions>(AdamWOptions(3e-2).weight_decay(0.1)));
  groups.emplace_back(std::vector<torch::Tensor>{ps[3], ps[4]},
                      std::make_unique<AdamWOptions>(
                          AdamWOptions(1e-2).weight_decay(0.0).betas({0.8, 0.95}).eps(1e-6)));
  return groups;
}

AdamWOptions defaults() { return AdamWOptions(1e-3); }

// A loss whose gradients differ per step and per tensor; backward accumulates into .grad.
void backward(const std::vector<torch::Tensor>& ps, int step) {
  torch::Tensor loss = torch::zeros({});
  for (size_t i = 0; i < ps.size(); ++i) {
    torch::manual_seed(1000 * step + i);
    loss = loss + (ps[i] * torch::randn(ps[i].sizes())).sum() + ps[i].pow(2).sum() * 0.1;
  }
  loss.backward();
}

void expect_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::equal(a[i].detach(), b[i].detach()))
        << "tensor " << i << " differs by " << (a[i] - b[i]).abs().max().item<double>();
}

// One step of each: zero the gradients, backward, clip (when max_norm > 0: both norms must be
// equal), update.
void step_both(torch::optim::AdamW& ref, const std::vector<torch::Tensor>& ref_params,
               FlatAdamW& flat, const std::vector<torch::Tensor>& flat_params, int step,
               double max_norm = 0) {
  ref.zero_grad();
  flat.zero_grad();
  backward(ref_params, step);
  backward(flat_params, step);
  if (max_norm > 0) {
    EXPECT_EQ(flat.clip_grad_norm(max_norm),
              torch::nn::utils::clip_grad_norm_(ref_params, max_norm));
  }
  ref.step();
  flat.step();
}

TEST(FlatAdamW, StepsMatchTorchAdamWBitForBit) {
  // One buffer per group, then buffers of at most 40 elements (the first group takes two).
  for (int64_t max_buffer : {int64_t(1) << 26, int64_t(40)}) {
    auto ref_params = make_params(1), flat_params = copies(ref_params);
    torch::optim::AdamW ref(groups_of(ref_params), defaults());
    FlatAdamW flat(groups_of(flat_params), defaults(), max_buffer);
    for (int step = 0; step < 6; ++step) {
      step_both(ref, ref_params, flat, flat_params, step, /*max_norm=*/1.0);
      expect_equal(ref_params, flat_params);
    }
  }
}

TEST(FlatAdamW, ClipMatchesClipGradNormBitForBit) {
  auto ref_params = make_params(2), flat_params = copies(ref_params);
  torch::optim::AdamW ref(groups_of(ref_params), defaults());
  FlatAdamW flat(groups_of(flat_params), defaults());
  for (double max_norm : {0.5, 1e9}) {
    ref.zero_grad();
    flat.zero_grad();
    backward(ref_params, 7);
    backward(flat_params, 7);
    const double ref_norm = torch::nn::utils::clip_grad_norm_(ref_params, max_norm);
    const double flat_norm = flat.clip_grad_norm(max_norm);
    EXPECT_EQ(flat_norm, ref_norm);
    for (size_t i = 0; i < ref_params.size(); ++i)
      EXPECT_TRUE(torch::equal(flat_params[i].grad(), ref_params[i].grad())) << "tensor " << i;
  }
}

TEST(FlatAdamW, StateRoundTripsThroughEitherOptimizer) {
  auto ref_params = make_params(3), flat_params = copies(ref_params);
  torch::optim::AdamW ref(groups_of(ref_params), defaults());
  FlatAdamW flat(groups_of(flat_params), defaults());
  for (int step = 0; step < 3; ++step) step_both(ref, ref_params, flat, flat_params, step);
  // Each resumes from the other's file, on fresh tensors with the same values.
  std::stringstream from_ref, from_flat;
  torch::save(ref, from_ref);
  torch::save(flat, from_flat);
  auto flat_resumed = copies(ref_params), ref_resumed = copies(flat_params);
  FlatAdamW flat2(groups_of(flat_resumed), defaults());
  torch::optim::AdamW ref2(groups_of(ref_resumed), defaults());
  torch::load(flat2, from_ref);
  torch::load(ref2, from_flat);
  for (int step = 3; step < 6; ++step) {
    ref.zero_grad();
    flat2.zero_grad();
    ref2.zero_grad();
    for (auto* params : {&ref_params, &flat_resumed, &ref_resumed}) backward(*params, step);
    ref.step();
    flat2.step();
    ref2.step();
  }
  expect_equal(ref_params, flat_resumed);
  expect_equal(ref_params, ref_resumed);
}

TEST(FlatAdamW, FollowsAParameterWhoseDataWasReplaced) {
  // module->to() and loaders replace a parameter's data: the optimizer must keep stepping the
  // parameter, not its old buffer.
  auto ref_params = make_params(4), flat_params = copies(ref_params);
  torch::optim::AdamW ref(groups_of(ref_params), defaults());
  FlatAdamW flat(groups_of(flat_params), defaults());
  for (int step = 0; step < 4; ++step) {
    if (step == 2) {
      torch::NoGradGuard no_grad;
      flat_params[1].set_data(flat_params[1].detach().clone());
    }
    step_both(ref, ref_params, flat, flat_params, step);
  }
  expect_equal(ref_params, flat_params);
}

TEST(FlatAdamW, RejectsAParameterThatNeedsNoGrad) {
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{torch::zeros({2})},
                      std::make_unique<AdamWOptions>(1e-3));
  EXPECT_THROW(FlatAdamW(std::move(groups), defaults()), std::invalid_argument);
}

}  // namespace
}  // namespace sweep::train
