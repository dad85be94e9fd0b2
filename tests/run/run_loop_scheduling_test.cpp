// The run loop hands out slots: never more workers than slots, GPU slots one job per GPU with
// CUDA_VISIBLE_DEVICES, a freed slot refilled in the tick that freed it, and launch failures.
#include <filesystem>
#include <set>

#include "protocol/job_file.h"
#include "run_loop_fixture.h"

namespace sweep::testing {
namespace {

using RunLoopScheduling = RunLoopTest;

TEST_F(RunLoopScheduling, RunsEveryJobOnceInGridOrderWithNoMoreWorkersThanSlots) {
  add_jobs(5);
  auto summary = run(config());
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(summary->launched, 5);
  EXPECT_FALSE(summary->interrupted);
  EXPECT_EQ(summary->counts[JobState::kSucceeded], 5);
  EXPECT_EQ(executor_.peak_running(), 2);
  ASSERT_EQ(executor_.launches().size(), 5u);
  for (int seed = 0; seed < 5; ++seed) {
    EXPECT_EQ(seed_of(executor_.launches()[static_cast<size_t>(seed)].job), seed);
    JobRecord j = job(seed);
    EXPECT_EQ(j.state, JobState::kSucceeded) << j.error;
    EXPECT_EQ(j.attempt, 1);
    EXPECT_EQ(j.device, "cpu");
    EXPECT_EQ(store_->metric_curve(j.id, "train_loss")->size(), 3u);
    EXPECT_EQ(store_->evals(j.id)->size(), 1u);
  }
}

TEST_F(RunLoopScheduling, CpuWorkersGetTheirThreadsInJobJsonAndOmpNumThreads) {
  add_jobs(1);
  ASSERT_TRUE(run(config()).ok());
  const FakeExecutor::Launch& launch = executor_.launches().at(0);
  EXPECT_EQ(launch.request.env.at("OMP_NUM_THREADS"), "3");
  EXPECT_EQ(launch.request.env.count("CUDA_VISIBLE_DEVICES"), 0u);
  EXPECT_EQ(launch.job.threads, 3);
  EXPECT_EQ(launch.job.device, "cpu");
  EXPECT_EQ(launch.job.attempt, 1);
  EXPECT_TRUE(launch.job.resume);
  EXPECT_EQ(launch.request.argv, (std::vector<std::string>{"fake-worker", job_json(0)}));
  EXPECT_EQ(launch.request.stderr_path, sweep_dir() + "/job0/worker-1.err");
}

TEST_F(RunLoopScheduling, EveryJobOfTheSweepGetsTheSweepsFeatureCacheDirectory) {
  add_jobs(2);
  ASSERT_TRUE(run(config()).ok());
  const std::string expected =
      std::filesystem::absolute(sweep_dir() + "/feature-cache").lexically_normal().string();
  ASSERT_EQ(executor_.launches().size(), 2u);
  for (const FakeExecutor::Launch& launch : executor_.launches())
    EXPECT_EQ(launch.job.feature_cache, expected);
}

TEST_F(RunLoopScheduling, GpuSlotsSetCudaVisibleDevicesOnePerGpu) {
  add_jobs(4);
  RunConfig c = config();
  c.resources.gpus = {3, 5};
  c.resources.jobs_per_gpu = 1;
  ASSERT_TRUE(run(c).ok());
  EXPECT_EQ(executor_.peak_running(), 2);
  std::multiset<std::string> visible;
  for (const auto& launch : executor_.launches()) {
    visible.insert(launch.request.env.at("CUDA_VISIBLE_DEVICES"));
    EXPECT_EQ(launch.request.env.count("OMP_NUM_THREADS"), 0u);
    EXPECT_EQ(launch.job.device, "cuda");
  }
  EXPECT_EQ(visible, (std::multiset<std::string>{"3", "3", "5", "5"}));
  // The first two jobs start together, one on each GPU.
  EXPECT_EQ(job(0).device, "cuda:3");
  EXPECT_EQ(job(1).device, "cuda:5");
  EXPECT_EQ(executor_.launches()[0].request.env.at("CUDA_VISIBLE_DEVICES"), "3");
  EXPECT_EQ(executor_.launches()[1].request.env.at("CUDA_VISIBLE_DEVICES"), "5");
}

TEST_F(RunLoopScheduling, AFreedSlotIsRefilledInTheTickThatFreedIt) {
  add_jobs(3);
  script_ = [](const JobFile& job) { return WorkerScript::succeeding(seed_of(job) == 0 ? 2 : 6); };
  ASSERT_TRUE(run(config()).ok());
  ASSERT_EQ(executor_.launches().size(), 3u);
  int64_t first = executor_.launches()[0].pid;
  ASSERT_TRUE(executor_.seen_ending(first).has_value());
  EXPECT_EQ(executor_.launches()[2].at, *executor_.seen_ending(first));
  EXPECT_EQ(seed_of(executor_.launches()[2].job), 2);
}

TEST_F(RunLoopScheduling, AMissingWorkerProgramEndsTheRunAndLeavesJobsPending) {
  add_jobs(2);
  executor_.fail_launches(
      make_error(ErrorKind::kNotFound, "worker program fake-worker is missing"));
  auto summary = run(config());
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(counts()[JobState::kPending], 2);
}

TEST_F(RunLoopScheduling, AWorkerThatCannotStartFailsItsJobAndTheRunGoesOn) {
  add_jobs(2);
  executor_.fail_launches(make_error(ErrorKind::kIo, "could not start worker: fork failed"));
  auto summary = run(config());
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(summary->counts[JobState::kFailed], 2);
  EXPECT_EQ(job(0).error, "could not start worker: fork failed");
  EXPECT_TRUE(observer_.saw("job job0 could not start"));
}

}  // namespace
}  // namespace sweep::testing
