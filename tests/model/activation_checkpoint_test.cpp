// Activation checkpointing: the same losses and gradients as without it (fp64, to 1e-12), with
// LoRA dropout too (the random-number state is replayed), and unchanged outputs without a graph.
#include "worker/model/activation_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <mutex>
#include <set>
#include <string>

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

constexpr double kTolerance = 1e-12;

LlavaForConditionalGeneration lora_model(double dropout, torch::Device device = torch::kCPU) {
  return lora_micro_model(torch::kFloat64, dropout, device);
}

// True when a node of `name` (a substring of Node::name()) is in the graph behind `t`.
bool graph_has(const torch::Tensor& t, const std::string& name) {
  std::vector<torch::autograd::Node*> todo = {t.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  while (!todo.empty()) {
    torch::autograd::Node* node = todo.back();
    todo.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->name().find(name) != std::string::npos) return true;
    for (const auto& edge : node->next_edges()) todo.push_back(edge.function.get());
  }
  return false;
}

struct StepResult {
  double loss = 0;
  std::vector<torch::Tensor> grads;  // every trainable parameter, in group order
  torch::Tensor next_random;         // a draw after the step: where the generator was left
};

// The same dropout masks from here on: LibTorch's generators (CUDA dropout) and the adapters' own
// CPU generator (lora_dropout_generator).
void reseed(LlavaForConditionalGeneration& m, uint64_t seed) {
  torch::manual_seed(seed);
  at::Generator dropout = lora_dropout_generator(m);
  std::lock_guard<std::mutex> lock(dropout.mutex());
  dropout.set_current_seed(seed);
}

using LossFn = std::function<torch::Tensor(LlavaForConditionalGeneration&, const SplicedBatch&)>;

torch::Tensor full_logits_loss(LlavaForConditionalGeneration& m, const SplicedBatch& b) {
  return causal_lm_loss(m->forward(b), b.labels);  // LlamaModel::forward
}

torch::Tensor supervised_loss(LlavaForConditionalGeneration& m, const SplicedBatch& b) {
  return m->loss(b);  // LlamaModel::forward_rows
}

StepResult train_step(LlavaForConditionalGeneration& m, bool checkpointing, bool train_projector,
                      const LossFn& loss_fn, torch::Device device) {
  m->language_model->model->set_gradient_checkpointing(checkpointing);
  TrainableGroups g = set_trainable(m, /*lora_mode=*/true, train_projector);
  for (auto& p : m->parameters()) p.mutable_grad() = torch::Tensor();
  m->train();
  MultimodalInputs in = sample_batch(micro_config());
  in.pixel_values = in.pixel_values.to(device);
  SplicedBatch b = m->splice(in, 64);
  reseed(m, 7);  // the same dropout masks in both runs
  torch::Tensor loss = loss_fn(m, b);
  EXPECT_EQ(graph_has(loss, "CheckpointFunction"), checkpointing);
  loss.backward();
  StepResult out;
  out.loss = loss.item<double>();
  for (auto* group : {&g.lora, &g.projector})
    for (auto& p : *group) out.grads.push_back(p.grad().clone());
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  out.next_random = torch::cat({torch::rand({4}, f64), torch::rand({4}, f64.device(device)).cpu()});
  return out;
}

void expect_same_step(double dropout, bool train_projector, const LossFn& loss_fn,
                      torch::Device device = torch::kCPU) {
  LlavaForConditionalGeneration m = lora_model(dropout, device);
  StepResult plain = train_step(m, /*checkpointing=*/false, train_projector, loss_fn, device);
  StepResult ckpt = train_step(m, /*checkpointing=*/true, train_projector, loss_fn, device);
  EXPECT_LE(std::abs(ckpt.loss - plain.loss), kTolerance);
  ASSERT_EQ(ckpt.grads.size(), plain.grads.size());
  double worst = 0, largest = 0;
  for (size_t i = 0; i < plain.grads.size(); ++i) {
    worst = std::max(worst, (ckpt.grads[i] - plain.grads[i]).abs().max().item<double>());
    largest = std::max(largest, plain.grads[i].abs().max().item<double>());
  }
  EXPECT_GT(largest, 0.0);
  EXPECT_LT(worst, kTolerance);
  EXPECT_TRUE(torch::equal(ckpt.next_random, plain.next_random));
}

TEST(ActivationCheckpoint, SameLossAndLoraGradientsThroughTheFullForward) {
  expect_same_step(/*dropout=*/0.0, /*train_projector=*/true, full_logits_loss);
}

TEST(ActivationCheckpoint, SameLossAndLoraGradientsThroughTheSupervisedRowsPath) {
  expect_same_step(/*dropout=*/0.0, /*train_projector=*/true, supervised_loss);
}

TEST(ActivationCheckpoint, LoraDropoutDrawsTheSameMasksInTheRecomputation) {
  expect_same_step(/*dropout=*/0.3, /*train_projector=*/true, full_logits_loss);
  expect_same_step(/*dropout=*/0.3, /*train_projector=*/true, supervised_loss);
}

// A frozen projector leaves the language model's input without a gradient; the layers' LoRA
// weights still get theirs.
TEST(ActivationCheckpoint, LayersGetGradientsWhenTheirInputNeedsNone) {
  expect_same_step(/*dropout=*/0.3, /*train_projector=*/false, supervised_loss);
}

// On CUDA, dropout draws from the device's generator: its state is replayed too.
TEST(ActivationCheckpoint, LoraDropoutMasksAreReplayedOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  expect_same_step(/*dropout=*/0.3, /*train_projector=*/true, full_logits_loss, torch::kCUDA);
  expect_same_step(/*dropout=*/0.3, /*train_projector=*/false, supervised_loss, torch::kCUDA);
}

TEST(ActivationCheckpoint, EvalModeAndNoGradOutputsAreUnchanged) {
  LlavaForConditionalGeneration m = lora_model(/*dropout=*/0.3);
  SplicedBatch b = m->splice(sample_batch(micro_config()), 64);
  m->eval();
  torch::Tensor eval_plain = m->forward(b);
  m->language_model->model->set_gradient_checkpointing(true);
  torch::Tensor eval_ckpt = m->forward(b);
  EXPECT_TRUE(torch::equal(eval_ckpt, eval_plain));

  m->train();  // dropout on, but no graph: the layers are called directly
  torch::NoGradGuard no_grad;
  m->language_model->model->set_gradient_checkpointing(false);
  reseed(m, 7);
  torch::Tensor train_plain = m->forward(b);
  m->language_model->model->set_gradient_checkpointing(true);
  reseed(m, 7);
  torch::Tensor train_ckpt = m->forward(b);
  EXPECT_TRUE(torch::equal(train_ckpt, train_plain));
  EXPECT_FALSE(train_ckpt.requires_grad());
}

TEST(ActivationCheckpoint, FunctionGradientsMatchAndExtrasGetNone) {
  torch::manual_seed(1);
  auto w = torch::randn({3, 3}, torch::kFloat64).requires_grad_();
  auto scale = torch::randn({3}, torch::kFloat64).requires_grad_();
  auto x0 = torch::randn({2, 3}, torch::kFloat64);
  auto block = [&](const torch::Tensor& x, const std::vector<torch::Tensor>& extras) {
    auto h = torch::dropout(torch::matmul(x, w), /*p=*/0.5, /*train=*/true);
    return torch::tanh(h) * extras[0];
  };
  auto run = [&](bool checkpointed) {
    w.mutable_grad() = torch::Tensor();
    scale.mutable_grad() = torch::Tensor();
    auto x = x0.clone().requires_grad_();
    torch::manual_seed(3);
    auto y = checkpointed ? activation_checkpoint(block, x, {scale}) : block(x, {scale});
    y.pow(2).sum().backward();
    return std::vector<torch::Tensor>{y.detach(), x.grad(), w.grad().clone()};
  };
  std::vector<torch::Tensor> plain = run(false);
  const bool scale_had_grad = scale.grad().defined();
  std::vector<torch::Tensor> ckpt = run(true);
  EXPECT_TRUE(scale_had_grad);
  EXPECT_FALSE(scale.grad().defined());  // extras are passed detached
  for (size_t i = 0; i < plain.size(); ++i)
    EXPECT_LT((ckpt[i] - plain[i]).abs().max().item<double>(), kTolerance) << "tensor " << i;
}

}  // namespace
}  // namespace sweep::model
