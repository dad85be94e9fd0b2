// Stopping a running sweep: the first stop request (Ctrl-C) lets the workers checkpoint and leaves
// their jobs resumable, the second kills them, and `sweep cancel` ends the sweep for good.
#include <fstream>

#include "run_loop_fixture.h"

namespace sweep::testing {
namespace {

using RunLoopStop = RunLoopTest;

TEST_F(RunLoopStop, TheFirstStopRequestSendsSigtermAndLeavesTheJobsResumable) {
  add_jobs(3);
  script_ = [](const JobFile&) { return WorkerScript::training(100); };
  RunLoop loop(*store_, executor_, config(), &observer_, clock_);
  double stop_at = clock_.now() + 5;
  bool asked = false;
  clock_.set_on_wait([&](double now) {
    if (now >= stop_at && !asked) {
      asked = true;
      loop.request_stop();
    }
  });
  auto summary = loop.run();
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_TRUE(summary->interrupted);
  EXPECT_EQ(summary->launched, 2);  // the third job never started
  EXPECT_EQ(summary->counts[JobState::kPending], 3);
  EXPECT_TRUE(observer_.saw("stopping: no new jobs"));
  for (const auto& launch : executor_.launches()) {
    auto signals = executor_.signals_to(launch.pid);
    ASSERT_EQ(signals.size(), 1u);
    EXPECT_FALSE(signals[0].kill);
  }
  for (int seed : {0, 1}) {
    auto tries = attempts(seed);
    ASSERT_EQ(tries.size(), 1u);
    EXPECT_EQ(tries[0].state, "pending");
    EXPECT_EQ(tries[0].error, "stopped at step 5");
    EXPECT_EQ(tries[0].exit_code, 0);
  }
  EXPECT_TRUE(attempts(2).empty());

  // The next run resumes them.
  script_ = [](const JobFile&) { return WorkerScript::succeeding(2); };
  ASSERT_TRUE(run(config()).ok());
  EXPECT_EQ(counts()[JobState::kSucceeded], 3);
  EXPECT_EQ(job(0).attempt, 2);
  EXPECT_TRUE(launches_of(0).back().job.resume);
}

TEST_F(RunLoopStop, TheSecondStopRequestKillsTheWorkers) {
  add_jobs(2);
  script_ = [](const JobFile&) { return WorkerScript::training(100).ignore_term(); };
  RunLoop loop(*store_, executor_, config(), &observer_, clock_);
  double start = clock_.now();
  int asked = 0;
  clock_.set_on_wait([&](double now) {
    if ((asked == 0 && now >= start + 5) || (asked == 1 && now >= start + 7)) {
      ++asked;
      loop.request_stop();
    }
  });
  auto summary = loop.run();
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_TRUE(summary->interrupted);
  EXPECT_TRUE(observer_.saw("killing 2 worker(s)"));
  for (const auto& launch : executor_.launches()) {
    auto signals = executor_.signals_to(launch.pid);
    ASSERT_EQ(signals.size(), 2u);
    EXPECT_FALSE(signals[0].kill);
    EXPECT_TRUE(signals[1].kill);
    EXPECT_EQ(signals[1].at, start + 7);
  }
  for (int seed : {0, 1}) {
    JobRecord j = job(seed);
    EXPECT_EQ(j.state, JobState::kPending);  // resumable from its last checkpoint
    EXPECT_EQ(j.exit_code, 137);
    EXPECT_EQ(j.error, "stopped by the user");
  }
}

TEST_F(RunLoopStop, ACancelRequestCancelsRunningAndPendingJobs) {
  add_jobs(3);
  script_ = [](const JobFile&) { return WorkerScript::training(100); };
  double cancel_at = clock_.now() + 3;
  bool asked = false;
  clock_.set_on_wait([&](double now) {
    if (now >= cancel_at && !asked) {
      asked = true;
      std::ofstream(cancel_request_path(sweep_dir())) << "1\n";  // what `sweep cancel` writes
    }
  });
  auto summary = run(config());
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(summary->counts[JobState::kCancelled], 3);
  EXPECT_EQ(job(0).error, "stopped at step 3");
  EXPECT_EQ(job(2).error, "cancelled by sweep cancel");
  EXPECT_EQ(executor_.launches().size(), 2u);
  EXPECT_TRUE(observer_.saw("sweep cancelled: stopping 2 worker(s)"));
}

}  // namespace
}  // namespace sweep::testing
