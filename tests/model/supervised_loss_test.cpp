// The supervised-only loss (LlavaForConditionalGeneration::loss, logits and the last decoder layer
// at supervised positions only) against causal_lm_loss of the full (B, T, V) logits: same value
// and same gradients of every trainable weight.
#include <iostream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "test_model.h"
#include "worker/model/causal_lm_loss.h"
#include "worker/model/lora.h"
#include "worker/model/tensor_roles.h"

namespace sweep::model {
namespace {

using testing::lora_micro_model;
using testing::micro_config;
using testing::sample_batch;

LlavaForConditionalGeneration lora_model(torch::Dtype dtype) { return lora_micro_model(dtype); }

struct LossAndGrads {
  double loss = 0;
  std::vector<torch::Tensor> grads;
};

template <typename LossFn>
LossAndGrads run(LlavaForConditionalGeneration& m, const MultimodalInputs& in, LossFn loss_fn) {
  TrainableGroups g = set_trainable(m, /*lora_mode=*/true, /*train_projector=*/true);
  for (auto& p : m->parameters()) p.mutable_grad() = torch::Tensor();
  SplicedBatch b = m->splice(in, 64);
  torch::Tensor loss = loss_fn(b);
  loss.backward();
  LossAndGrads out;
  out.loss = loss.item<double>();
  for (auto* group : {&g.lora, &g.projector})
    for (auto& p : *group) out.grads.push_back(p.grad().clone());
  return out;
}

void expect_same_loss_and_grads(torch::Dtype dtype, const MultimodalInputs& in, double tol) {
  LlavaForConditionalGeneration m = lora_model(dtype);
  LossAndGrads full =
      run(m, in, [&](const SplicedBatch& b) { return causal_lm_loss(m->forward(b), b.labels); });
  LossAndGrads rows = run(m, in, [&](const SplicedBatch& b) { return m->loss(b); });
  EXPECT_NEAR(rows.loss, full.loss, tol * std::max(1.0, std::abs(full.loss)));
  ASSERT_EQ(rows.grads.size(), full.grads.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < full.grads.size(); ++i) {
    worst = std::max(worst, (rows.grads[i] - full.grads[i]).abs().max().item<double>());
    scale = std::max(scale, full.grads[i].abs().max().item<double>());
  }
  std::cout << "loss diff " << std::abs(rows.loss - full.loss) << ", max grad diff " << worst
            << " (max grad " << scale << ")\n";
  EXPECT_GT(scale, 0.0);
  EXPECT_LE(worst, tol * std::max(1.0, scale));
}

// Three samples: one with an image, one text-only, one longer with supervision in the middle, so
// padding, the image span and several supervised runs are all present.
MultimodalInputs three_samples(const LlavaConfig& c) {
  MultimodalInputs in = sample_batch(c);
  in.input_ids.push_back({1, 20, kImageTokenIndex, 21, 22, 23, 24, 25, 26});
  in.labels.push_back(
      {kIgnoreIndex, kIgnoreIndex, kIgnoreIndex, 21, 22, kIgnoreIndex, kIgnoreIndex, 25, 26});
  in.has_image.push_back(true);
  in.pixel_values = torch::cat({in.pixel_values, torch::randn({1, 3, 16, 16})});  // (3, 3, S, S)
  return in;
}

TEST(SupervisedLoss, EqualsFullLogitsLossAndGradientsInFp64) {
  expect_same_loss_and_grads(torch::kFloat64, three_samples(micro_config()), 1e-12);
}

TEST(SupervisedLoss, EqualsFullLogitsLossAndGradientsInFp32) {
  expect_same_loss_and_grads(torch::kFloat32, three_samples(micro_config()), 1e-6);
}

TEST(SupervisedLoss, LogitsAtRowsAreTheFullLogitsRows) {
  LlavaForConditionalGeneration m = lora_model(torch::kFloat64);
  torch::NoGradGuard no_grad;
  SplicedBatch b = m->splice(three_samples(micro_config()), 64);
  torch::Tensor full = m->forward(b);  // (B, T, V)
  const int64_t B = full.size(0), T = full.size(1);
  torch::Tensor rows = torch::arange(B * T);  // every position, padding included
  torch::Tensor at = m->logits_at(b, rows);   // (B*T, V)
  EXPECT_LE((at - full.reshape({B * T, -1})).abs().max().item<double>(), 1e-12);
}

TEST(SupervisedLoss, NoSupervisedTokenGivesZeroWithAGraph) {
  LlavaForConditionalGeneration m = lora_model(torch::kFloat32);
  set_trainable(m, /*lora_mode=*/true, /*train_projector=*/false);
  MultimodalInputs in = sample_batch(micro_config());
  for (auto& labels : in.labels) std::fill(labels.begin(), labels.end(), kIgnoreIndex);
  SplicedBatch b = m->splice(in, 64);
  torch::Tensor loss = m->loss(b);
  EXPECT_EQ(loss.item<double>(), 0.0);
  EXPECT_TRUE(loss.requires_grad());
  loss.backward();  // no throw: the graph reaches the adapters, with zero gradients
}

TEST(SupervisedLoss, PositionsAreTheShiftedSupervisedLabels) {
  const int64_t x = kIgnoreIndex;
  torch::Tensor labels =
      torch::tensor(std::vector<int64_t>{x, x, 7, 8, x, x, x, 9}, torch::kInt64).view({2, 4});
  SupervisedPositions at = supervised_positions(labels);
  EXPECT_EQ(at.count, 3);
  EXPECT_TRUE(torch::equal(at.rows, torch::tensor({1, 2, 6}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(at.samples, torch::tensor({0, 0, 1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(at.targets, torch::tensor({7, 8, 9}, torch::kInt64)));
}

}  // namespace
}  // namespace sweep::model
