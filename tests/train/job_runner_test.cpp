// The job runner in-process on the tiny world: learning, exact resume, divergence, checkpoint
// layout and the event stream.
#include "worker/train/job_runner.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "protocol/exit_codes.h"
#include "tests/train/train_world.h"
#include "worker/train/model_setup.h"

namespace sweep::train {
namespace {
namespace fs = std::filesystem;
using testing::fast_params;
using testing::find_event;
using testing::make_job;
using testing::progress_losses;
using testing::read_events;

int run(const JobFile& job) { return testing::run_fresh(job); }

TEST(JobRunner, TinyModelOverfitsEightSamples) {
  JobFile job = make_job("overfit", fast_params({{"max_steps", 60},
                                                 {"mode", "full"},
                                                 {"eval_every", 0},
                                                 {"eval_samples", 1},
                                                 {"batch_size", 8},
                                                 {"learning_rate", 3e-3},
                                                 {"warmup_steps", 0},
                                                 {"lr_scheduler", "constant"}}));
  ASSERT_EQ(run(job), kExitOk);
  auto losses = progress_losses(read_events(job.run_dir));
  ASSERT_EQ(losses.size(), 60u);
  EXPECT_LT(losses.back().second, 0.3 * losses.front().second)
      << "first " << losses.front().second << " last " << losses.back().second;
}

TEST(JobRunner, ResumeFromACheckpointReproducesTheUninterruptedLosses) {
  JobFile whole = make_job("whole", fast_params({}));
  ASSERT_EQ(run(whole), kExitOk);
  auto expected = progress_losses(read_events(whole.run_dir));
  ASSERT_EQ(expected.size(), 12u);

  // The same job, interrupted after its step-6 checkpoint: copy the run and forget what followed.
  JobFile cut = make_job("cut", fast_params({}));
  testing::copy_as_interrupted(whole, cut, "step-000012");
  ASSERT_EQ(run_job_file(cut.run_dir + "/job.json"), kExitOk);

  auto events = read_events(cut.run_dir);
  auto resumed = progress_losses(events, 2);
  ASSERT_EQ(resumed.size(), 6u);
  for (size_t i = 0; i < resumed.size(); ++i) {
    EXPECT_EQ(resumed[i].first, expected[6 + i].first);
    EXPECT_NEAR(resumed[i].second, expected[6 + i].second, 1e-6) << "step " << resumed[i].first;
  }
  const StartedEvent* started = nullptr;
  for (const auto& e : events)
    if (e.as<StartedEvent>() && e.attempt == 2) started = e.as<StartedEvent>();
  ASSERT_NE(started, nullptr);
  EXPECT_EQ(started->resumed_from_step, 6);
}

TEST(JobRunner, HugeLearningRateEndsAsDiverged) {
  JobFile job = make_job("diverge", fast_params({{"learning_rate", 1e30},
                                                 {"mode", "full"},
                                                 {"max_grad_norm", 0},
                                                 {"warmup_steps", 0},
                                                 {"eval_every", 0},
                                                 {"max_steps", 30}}));
  EXPECT_EQ(run(job), kExitDiverged);
  auto events = read_events(job.run_dir);
  ASSERT_FALSE(events.empty());
  const auto* last = events.back().as<FailedEvent>();
  ASSERT_NE(last, nullptr) << events.back().type();
  EXPECT_EQ(last->stage, "train");
  EXPECT_TRUE(last->diverged);
  EXPECT_NE(last->message.find("lower learning_rate"), std::string::npos);
}

TEST(JobRunner, EventsCoverStepZeroEvalCheckpointsAndFinish) {
  JobFile job =
      make_job("events", fast_params({{"save_top_k", 1}, {"max_steps", 12}, {"eval_every", 4}}));
  ASSERT_EQ(run(job), kExitOk);
  auto events = read_events(job.run_dir);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().type(), "started");
  EXPECT_EQ(events.back().type(), "finished");

  std::vector<int> eval_steps, ckpt_steps;
  for (const auto& e : events) {
    if (const auto* ev = e.as<EvalEvent>()) eval_steps.push_back(static_cast<int>(ev->step));
    if (const auto* c = e.as<CheckpointEvent>()) ckpt_steps.push_back(static_cast<int>(c->step));
  }
  EXPECT_EQ(eval_steps, (std::vector<int>{0, 4, 8, 12}));
  EXPECT_EQ(ckpt_steps, (std::vector<int>{4, 8, 12}));

  const auto* eval0 = find_event(events, "eval")->as<EvalEvent>();
  for (const char* k : {"val_loss", "val_token_acc", "val_exact_match"})
    EXPECT_TRUE(std::isfinite(eval0->metrics.at(k))) << k;
  EXPECT_EQ(eval0->metrics.size(), 3u);  // val_samples and seconds are not metrics
  EXPECT_EQ(eval0->val_samples, 3);
  EXPECT_TRUE(eval0->seconds.has_value());
  const auto* progress = find_event(events, "progress")->as<ProgressEvent>();
  for (const char* k : {"epoch", "samples_seen", "tokens_seen", "train_loss", "lr", "grad_norm",
                        "tokens_per_s", "mem_mb"})
    EXPECT_TRUE(progress->metrics.count(k)) << k;
  EXPECT_EQ(progress->metrics.at("samples_seen"), 4);
  EXPECT_GT(progress->metrics.at("mem_mb"), 10.0);
  EXPECT_DOUBLE_EQ(progress->metrics.at("lr"), 0.0);  // warmup: the first update uses 0

  // Kept: the best by val_loss plus the latest; the finished event points at the best, and the
  // checkpoint events list what the retention deleted.
  std::set<std::string> deleted;
  for (const auto& e : events)
    if (const auto* c = e.as<CheckpointEvent>())
      deleted.insert(c->deleted.begin(), c->deleted.end());
  for (const std::string& d : deleted) EXPECT_FALSE(fs::exists(d)) << d;
  const auto* fin = events.back().as<FinishedEvent>();
  ASSERT_NE(fin, nullptr);
  ASSERT_TRUE(fin->best_checkpoint.has_value());
  const std::string best = *fin->best_checkpoint;
  EXPECT_EQ(deleted.count(best), 0u);
  EXPECT_TRUE(fs::exists(best + "/adapter_model.safetensors"));
  int kept = 0;
  for (const auto& d : fs::directory_iterator(job.checkpoints_dir())) kept += d.is_directory();
  EXPECT_EQ(kept, best == job.checkpoints_dir() + "/step-000012" ? 1 : 2);
  ASSERT_TRUE(fin->best.has_value());
  EXPECT_EQ(fin->best->step, std::stoi(best.substr(best.size() - 6)));

  const std::string latest = job.checkpoints_dir() + "/step-000012";
  for (const char* f :
       {"adapter_config.json", "adapter_model.safetensors", "non_lora_trainables.safetensors",
        "trainer_state.json", "optimizer.pt", "rng.json"})
    EXPECT_TRUE(fs::exists(latest + "/" + f)) << f;
  std::ifstream in(latest + "/trainer_state.json");
  auto state = nlohmann::json::parse(in);
  EXPECT_EQ(state["global_step"], 12);
  EXPECT_EQ(state["schedule"]["kind"], "cosine");
  EXPECT_EQ(state["schedule"]["warmup_steps"], 2);
  EXPECT_TRUE(state["metrics"]["val_loss"].is_number());
}

// Early stopping's rungs: the worker evaluates and checkpoints at the first step whose training
// tokens reach each rung, besides eval_every, and every eval carries the tokens seen.
TEST(JobRunner, RungsInJobJsonAddEvaluationsWhereTheTokensReachThem) {
  JobFile job = make_job("rungs", fast_params({{"max_steps", 8}, {"eval_every", 0}}));
  // First learn the tokens per step of this run (they vary with the samples drawn).
  JobFile probe = make_job("rungs-probe", fast_params({{"max_steps", 8}, {"eval_every", 0}}));
  ASSERT_EQ(run(probe), kExitOk);
  std::vector<int64_t> tokens_after;  // by step
  for (const auto& e : read_events(probe.run_dir))
    if (const auto* p = e.as<ProgressEvent>())
      tokens_after.push_back(static_cast<int64_t>(p->metrics.at("tokens_seen")));
  ASSERT_EQ(tokens_after.size(), 8u);
  // One rung exactly at step 2's count, one just past step 4's (reached at step 5).
  job.eval_at_tokens = {tokens_after[1], tokens_after[3] + 1};
  ASSERT_EQ(run(job), kExitOk);

  std::vector<int> eval_steps, ckpt_steps;
  std::vector<int64_t> eval_tokens;
  for (const auto& e : read_events(job.run_dir)) {
    if (const auto* ev = e.as<EvalEvent>()) {
      eval_steps.push_back(static_cast<int>(ev->step));
      ASSERT_TRUE(ev->tokens_seen.has_value());
      eval_tokens.push_back(*ev->tokens_seen);
      EXPECT_EQ(ev->samples_seen, ev->step * 4);
    }
    if (const auto* c = e.as<CheckpointEvent>()) ckpt_steps.push_back(static_cast<int>(c->step));
  }
  EXPECT_EQ(eval_steps, (std::vector<int>{0, 2, 5, 8}));
  EXPECT_EQ(ckpt_steps, (std::vector<int>{2, 5, 8}));
  EXPECT_EQ(eval_tokens,
            (std::vector<int64_t>{0, tokens_after[1], tokens_after[4], tokens_after[7]}));
}

TEST(JobRunner, FullModeCheckpointIsAModelDirectory) {
  JobFile job = make_job(
      "full",
      fast_params(
          {{"mode", "full"}, {"max_steps", 2}, {"eval_every", 0}, {"learning_rate", 1e-3}}));
  ASSERT_EQ(run(job), kExitOk);
  const std::string ckpt = job.checkpoints_dir() + "/step-000002";
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.model", "optimizer.pt"})
    EXPECT_TRUE(fs::exists(ckpt + "/" + f)) << f;
  EXPECT_FALSE(fs::exists(ckpt + "/adapter_config.json"));
  auto m = load_model_with_checkpoint(job.base_model, ckpt, torch::kFloat32, torch::kCPU);
  EXPECT_EQ(m->config().text.hidden_size, 128);
}

TEST(JobRunner, BadParameterFailsAtLoadModelWithExitOne) {
  JobFile job = make_job("badparam", fast_params({{"lora_rank", 8}}));
  EXPECT_EQ(run(job), kExitBadInput);
  auto events = read_events(job.run_dir);
  ASSERT_FALSE(events.empty());
  const auto* failed = events.back().as<FailedEvent>();
  ASSERT_NE(failed, nullptr) << events.back().type();
  EXPECT_EQ(failed->stage, "load_model");
  EXPECT_EQ(failed->message, "unknown training parameter 'lora_rank'");
}

TEST(JobRunner, MissingTrainDataFailsAtLoadData) {
  JobFile job = make_job("nodata", fast_params({}));
  job.train_data = job.run_dir + "/missing.json";
  EXPECT_EQ(run(job), kExitBadInput);
  auto events = read_events(job.run_dir);
  const auto* failed = events.back().as<FailedEvent>();
  ASSERT_NE(failed, nullptr) << events.back().type();
  EXPECT_EQ(failed->stage, "load_data");
  EXPECT_NE(failed->message.find("missing.json"), std::string::npos);
}

}  // namespace
}  // namespace sweep::train
