// The job runner on a CUDA device, on the tiny world of tests/train: LoRA training lowers the
// loss in the default precision (bf16 base, fp32 adapters), a resumed run repeats the
// uninterrupted one, and bf16 starts where fp32 does.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "protocol/exit_codes.h"
#include "tests/train/train_world.h"
#include "worker/train/job_runner.h"

namespace sweep::train {
namespace {
namespace fs = std::filesystem;
using testing::make_job;
using testing::progress_losses;
using testing::read_events;

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "LibTorch sees no CUDA device"

nlohmann::json gpu_params(nlohmann::json extra) {
  nlohmann::json p = {{"batch_size", 4},   {"max_steps", 12},     {"eval_every", 6},
                      {"eval_samples", 3}, {"max_new_tokens", 3}, {"model_max_length", 256},
                      {"lora_r", 8},       {"lora_alpha", 16},    {"learning_rate", 5e-3},
                      {"warmup_steps", 2}, {"lora_dropout", 0.0}, {"seed", 3},
                      {"save_top_k", 5}};
  for (auto& [k, v] : extra.items()) p[k] = v;
  return p;
}

JobFile gpu_job(const std::string& name, nlohmann::json params) {
  JobFile job = make_job(name, gpu_params(std::move(params)));
  job.device = "cuda";
  return job;
}

int run(const JobFile& job) {
  fs::remove_all(job.run_dir);
  fs::create_directories(job.run_dir);
  job.write(job.run_dir + "/job.json");
  return run_job_file(job.run_dir + "/job.json");
}

TEST(GpuTraining, LoraLowersTheLossInTheDefaultPrecision) {
  SKIP_WITHOUT_CUDA();
  JobFile job = gpu_job("gpu_learn", {{"max_steps", 40},
                                      {"eval_every", 0},
                                      {"batch_size", 8},
                                      {"learning_rate", 1e-2},
                                      {"warmup_steps", 0},
                                      {"lr_scheduler", "constant"}});
  ASSERT_EQ(run(job), kExitOk);
  auto losses = progress_losses(read_events(job.run_dir));
  ASSERT_EQ(losses.size(), 40u);
  EXPECT_LT(losses.back().second, 0.85 * losses.front().second)
      << "first " << losses.front().second << " last " << losses.back().second;
}

TEST(GpuTraining, ResumeReproducesTheUninterruptedLosses) {
  SKIP_WITHOUT_CUDA();
  JobFile whole = gpu_job("gpu_whole", {{"precision", "fp32"}});
  ASSERT_EQ(run(whole), kExitOk);
  auto expected = progress_losses(read_events(whole.run_dir));
  ASSERT_EQ(expected.size(), 12u);

  JobFile cut = gpu_job("gpu_cut", {{"precision", "fp32"}});
  fs::remove_all(cut.run_dir);
  fs::copy(whole.run_dir, cut.run_dir, fs::copy_options::recursive);
  fs::remove_all(cut.run_dir + "/checkpoints/step-000012");
  fs::remove(cut.run_dir + "/checkpoints/latest");
  cut.attempt = 2;
  cut.write(cut.run_dir + "/job.json");
  ASSERT_EQ(run_job_file(cut.run_dir + "/job.json"), kExitOk);

  auto resumed = progress_losses(read_events(cut.run_dir), 2);
  ASSERT_EQ(resumed.size(), 6u);
  // CUDA's atomic-add reductions (index_select's backward) may reorder float sums between runs.
  for (size_t i = 0; i < resumed.size(); ++i)
    EXPECT_NEAR(resumed[i].second, expected[6 + i].second, 1e-4 * expected[6 + i].second)
        << "step " << resumed[i].first;
}

TEST(GpuTraining, Bf16StartsWhereFp32Starts) {
  SKIP_WITHOUT_CUDA();
  JobFile fp32 = gpu_job("gpu_fp32", {{"precision", "fp32"}, {"max_steps", 3}, {"eval_every", 0}});
  JobFile bf16 = gpu_job("gpu_bf16", {{"precision", "bf16"}, {"max_steps", 3}, {"eval_every", 0}});
  ASSERT_EQ(run(fp32), kExitOk);
  ASSERT_EQ(run(bf16), kExitOk);
  auto a = progress_losses(read_events(fp32.run_dir));
  auto b = progress_losses(read_events(bf16.run_dir));
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_NEAR(b[0].second, a[0].second, 0.02 * a[0].second);
}

}  // namespace
}  // namespace sweep::train
