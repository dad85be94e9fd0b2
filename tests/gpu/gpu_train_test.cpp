// The job runner on a CUDA device, on the tiny world of tests/train: LoRA training lowers the
// loss in the default precision (bf16 base, fp32 adapters), a resumed run repeats the
// uninterrupted one, and bf16 starts where fp32 does.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "protocol/exit_codes.h"
#include "tests/train/train_world.h"
#include "worker/train/job_runner.h"

namespace sweep::train {
namespace {
using testing::make_job;
using testing::progress_losses;
using testing::read_events;

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "LibTorch sees no CUDA device"

JobFile gpu_job(const std::string& name, nlohmann::json params) {
  params["lora_dropout"] = 0.0;
  JobFile job = make_job(name, testing::fast_params(std::move(params)));
  job.device = "cuda";
  return job;
}

int run(const JobFile& job) { return testing::run_fresh(job); }

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
  testing::copy_as_interrupted(whole, cut, "step-000012");
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
