// Packing (worker/model/pack.h): several jobs' adapters on one frozen base, their language-model
// passes run together. Each job's loss and gradients must be those of its own model run alone.
#include <cmath>
#include <iostream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "test_model.h"
#include "worker/model/lora.h"
#include "worker/model/pack.h"
#include "worker/model/tensor_roles.h"

namespace sweep::model {
namespace {

using testing::micro_config;

struct Job {
  int r;
  double alpha;
  uint64_t seed;
};

// A pack of jobs on one micro base (the projector trains, so each job owns a copy of it).
struct Fixture {
  LlavaForConditionalGeneration base{nullptr};
  std::vector<LlavaForConditionalGeneration> members;
  std::vector<TrainableGroups> groups;

  Fixture(torch::Dtype dtype, const std::vector<Job>& jobs, double dropout) {
    base = LlavaForConditionalGeneration(micro_config(), /*seed=*/3);
    base->to_precision(dtype, torch::kCPU);
    for (const Job& job : jobs) {
      LlavaForConditionalGeneration m = share_frozen(base, /*own_projector=*/true);
      LoraSettings s;
      s.r = job.r;
      s.alpha = job.alpha;
      s.dropout = dropout;
      apply_lora(m, s, job.seed);
      m->to_precision(dtype, torch::kCPU);
      torch::NoGradGuard no_grad;
      torch::manual_seed(static_cast<int64_t>(job.seed));
      for (auto& item : m->named_parameters())  // B random, so that A gets a gradient
        if (classify(item.key()).role == TensorRole::kLoraB)
          item.value().copy_(torch::randn_like(item.value()) * 0.05);
      groups.push_back(set_trainable(m, /*lora_mode=*/true, /*train_projector=*/true));
      m->train();
      members.push_back(m);
    }
  }

  void zero_grads() {
    for (auto& m : members)
      for (auto& p : m->parameters()) p.mutable_grad() = torch::Tensor();
  }
  std::vector<torch::Tensor> grads(size_t i) {
    std::vector<torch::Tensor> out;
    for (auto* group : {&groups[i].lora, &groups[i].projector})
      for (auto& p : *group) out.push_back(p.grad().defined() ? p.grad().clone() : p.grad());
    return out;
  }
};

// Batches of different sizes and lengths, so the pack pads and splits unevenly.
std::vector<MultimodalInputs> job_batches(const LlavaConfig& c) {
  std::vector<MultimodalInputs> out;
  out.push_back(testing::sample_batch(c, 1));  // 2 samples, longest 7 + image
  MultimodalInputs text;
  text.input_ids = {{1, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}};
  text.labels = {{kIgnoreIndex, kIgnoreIndex, kIgnoreIndex, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                  kIgnoreIndex, kIgnoreIndex}};
  text.pixel_values = torch::zeros({1, 3, c.image_size(), c.image_size()});
  text.has_image = {false};
  out.push_back(text);
  out.push_back(testing::sample_batch(c, 7));
  return out;
}

struct Outcome {
  std::vector<double> losses;
  std::vector<std::vector<torch::Tensor>> grads;
};

std::vector<torch::Tensor> generator_states(Fixture& f) {
  std::vector<torch::Tensor> out;
  for (auto& m : f.members) out.push_back(lora_dropout_generator(m).get_state());
  return out;
}
void set_generator_states(Fixture& f, const std::vector<torch::Tensor>& states) {
  for (size_t i = 0; i < f.members.size(); ++i)
    lora_dropout_generator(f.members[i]).set_state(states[i]);
}

Outcome run_alone(Fixture& f, const std::vector<MultimodalInputs>& in) {
  f.zero_grads();
  Outcome out;
  for (size_t i = 0; i < f.members.size(); ++i) {
    torch::Tensor loss = f.members[i]->loss(f.members[i]->splice(in[i], 64));
    loss.backward();
    out.losses.push_back(loss.item<double>());
    out.grads.push_back(f.grads(i));
  }
  return out;
}

Outcome run_packed(Fixture& f, const std::vector<MultimodalInputs>& in) {
  f.zero_grads();
  LanguagePack pack(f.base, f.members);
  std::vector<size_t> active;
  std::vector<SplicedBatch> batches;
  for (size_t i = 0; i < f.members.size(); ++i) {
    active.push_back(i);
    batches.push_back(f.members[i]->splice(in[i], 64));
  }
  std::vector<torch::Tensor> losses = pack.losses(active, batches);
  torch::Tensor total = losses[0];
  for (size_t i = 1; i < losses.size(); ++i) total = total + losses[i];
  total.backward();
  Outcome out;
  for (size_t i = 0; i < losses.size(); ++i) {
    out.losses.push_back(losses[i].item<double>());
    out.grads.push_back(f.grads(i));
  }
  return out;
}

void expect_equal(const Outcome& alone, const Outcome& packed, double tol) {
  ASSERT_EQ(alone.losses.size(), packed.losses.size());
  double worst_loss = 0, worst_grad = 0, scale = 0;
  for (size_t i = 0; i < alone.losses.size(); ++i) {
    worst_loss = std::max(worst_loss, std::abs(alone.losses[i] - packed.losses[i]));
    ASSERT_EQ(alone.grads[i].size(), packed.grads[i].size());
    for (size_t k = 0; k < alone.grads[i].size(); ++k) {
      // Undefined alone (the projector of a text-only batch) means undefined packed too.
      ASSERT_EQ(alone.grads[i][k].defined(), packed.grads[i][k].defined()) << i << " " << k;
      if (!alone.grads[i][k].defined()) continue;
      worst_grad =
          std::max(worst_grad, (alone.grads[i][k] - packed.grads[i][k]).abs().max().item<double>());
      scale = std::max(scale, alone.grads[i][k].abs().max().item<double>());
    }
  }
  std::cout << "max loss diff " << worst_loss << ", max grad diff " << worst_grad << " (max grad "
            << scale << ")\n";
  EXPECT_GT(scale, 0.0);
  EXPECT_LE(worst_loss, tol);
  EXPECT_LE(worst_grad, tol * std::max(1.0, scale));
}

const std::vector<Job> kJobs = {{4, 8, 5}, {8, 8, 6}, {2, 4, 9}};

TEST(Pack, SharedFrozenWeightsAreTheBaseTensorsAndTheProjectorIsTheJobsOwn) {
  LlavaForConditionalGeneration base(micro_config(), 3);
  LlavaForConditionalGeneration job = share_frozen(base, /*own_projector=*/true);
  auto b = base->named_parameters();
  for (const auto& item : job->named_parameters()) {
    const bool projector = classify(item.key()).role == TensorRole::kProjector;
    EXPECT_EQ(item.value().data_ptr() == b[item.key()].data_ptr(), !projector) << item.key();
    EXPECT_TRUE(item.value().equal(b[item.key()])) << item.key();
  }
  LlavaForConditionalGeneration frozen = share_frozen(base, /*own_projector=*/false);
  for (const auto& item : frozen->named_parameters())
    EXPECT_EQ(item.value().data_ptr(), b[item.key()].data_ptr()) << item.key();
}

TEST(Pack, LossesAndGradientsEqualEachJobAloneFp64) {
  Fixture f(torch::kFloat64, kJobs, /*dropout=*/0.0);
  auto in = job_batches(micro_config());
  expect_equal(run_alone(f, in), run_packed(f, in), 1e-12);
}

TEST(Pack, LossesAndGradientsEqualEachJobAloneFp32) {
  Fixture f(torch::kFloat32, kJobs, /*dropout=*/0.0);
  auto in = job_batches(micro_config());
  expect_equal(run_alone(f, in), run_packed(f, in), 2e-6);
}

// Each job draws its dropout masks from its own generator, for its own padded length, so a pack
// draws the masks the job draws alone.
TEST(Pack, DropoutDrawsTheMasksOfEachJobAlone) {
  Fixture f(torch::kFloat64, kJobs, /*dropout=*/0.3);
  auto in = job_batches(micro_config());
  const auto states = generator_states(f);
  Outcome alone = run_alone(f, in);
  set_generator_states(f, states);
  expect_equal(alone, run_packed(f, in), 1e-12);
}

TEST(Pack, CheckpointedLayersReplayRoutingAndDropout) {
  Fixture f(torch::kFloat64, kJobs, /*dropout=*/0.3);
  f.base->language_model->model->set_gradient_checkpointing(true);
  for (auto& m : f.members) m->language_model->model->set_gradient_checkpointing(true);
  auto in = job_batches(micro_config());
  const auto states = generator_states(f);
  Outcome alone = run_alone(f, in);
  set_generator_states(f, states);
  expect_equal(alone, run_packed(f, in), 1e-12);
}

// A job whose adapter produces NaN does not touch the others' losses or gradients.
TEST(Pack, ADivergingJobLeavesTheOthersAlone) {
  Fixture f(torch::kFloat64, kJobs, /*dropout=*/0.0);
  auto in = job_batches(micro_config());
  Outcome alone = run_alone(f, in);
  {
    torch::NoGradGuard no_grad;
    for (auto& item : f.members[1]->named_parameters())
      if (classify(item.key()).role == TensorRole::kLoraB) item.value().fill_(NAN);
  }
  Outcome packed = run_packed(f, in);
  EXPECT_TRUE(std::isnan(packed.losses[1]));
  for (size_t i : {size_t{0}, size_t{2}}) {
    EXPECT_NEAR(packed.losses[i], alone.losses[i], 1e-12);
    for (size_t k = 0; k < alone.grads[i].size(); ++k) {
      if (alone.grads[i][k].defined()) {
        EXPECT_TRUE(packed.grads[i][k].allclose(alone.grads[i][k], 0, 1e-12)) << i << " " << k;
      }
    }
  }
}

TEST(Pack, RefusesJobsThatAdaptDifferentModules) {
  LlavaForConditionalGeneration base(micro_config(), 3);
  LlavaForConditionalGeneration a = share_frozen(base, false), b = share_frozen(base, false);
  LoraSettings all, q_only;
  q_only.target_modules = {"q_proj"};
  apply_lora(a, all, 1);
  apply_lora(b, q_only, 2);
  EXPECT_THROW(LanguagePack(base, {a, b}), std::runtime_error);
}

}  // namespace
}  // namespace sweep::model
