// How the run loop records an attempt's end and when it retries (retry_policy.h): failures retried
// with resume while `retries` allow, `sweep retry` granting a fresh budget, divergence final,
// max_job_time enforced with SIGTERM then SIGKILL, a vanished worker lost.
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "db/schema.h"
#include "orchestrator/run/retry_policy.h"
#include "run_loop_fixture.h"

namespace sweep::testing {
namespace {

using RunLoopRetry = RunLoopTest;

TEST_F(RunLoopRetry, AFailedAttemptIsRetriedWithResumeUntilTheRetriesAreUsed) {
  add_jobs(2);
  // Seed 0 fails once and then succeeds; seed 1 fails every time.
  script_ = [](const JobFile& job) {
    if (seed_of(job) == 0 && job.attempt > 1) return WorkerScript::succeeding(4);
    return WorkerScript::failing(2, "boom at step 2");
  };
  RunConfig c = config();
  c.retries = 1;
  ASSERT_TRUE(run(c).ok());

  JobRecord recovered = job(0);
  EXPECT_EQ(recovered.state, JobState::kSucceeded);
  EXPECT_EQ(recovered.attempt, 2);
  auto tries = attempts(0);
  ASSERT_EQ(tries.size(), 2u);
  EXPECT_EQ(tries[0].state, "failed");
  EXPECT_EQ(tries[0].error, "train: boom at step 2");
  EXPECT_EQ(tries[0].exit_code, 2);
  EXPECT_EQ(tries[1].state, "succeeded");
  auto launches = launches_of(0);
  ASSERT_EQ(launches.size(), 2u);
  EXPECT_EQ(launches[1].job.attempt, 2);
  EXPECT_TRUE(launches[1].job.resume);
  EXPECT_EQ(store_->metric_curve(recovered.id, "train_loss")->size(), 4u);

  JobRecord exhausted = job(1);
  EXPECT_EQ(exhausted.state, JobState::kFailed);
  EXPECT_EQ(exhausted.attempt, 2);
  EXPECT_EQ(exhausted.error, "train: boom at step 2");
  EXPECT_TRUE(observer_.saw("job job1 failed, re-queued: train: boom at step 2"));
}

TEST_F(RunLoopRetry, AnExitWithoutAFinalEventFailsWithTheLastStderrLines) {
  add_jobs(1);
  script_ = [](const JobFile&) {
    return WorkerScript::training(2).stderr_text("loading\nfatal: out of memory\n").exit(2, 7);
  };
  ASSERT_TRUE(run(config()).ok());
  JobRecord j = job(0);
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.exit_code, 7);
  EXPECT_EQ(j.error,
            "worker exited with code 7 without a final event: loading | fatal: out of memory");
}

TEST_F(RunLoopRetry, SweepRetryGivesFailedJobsAFreshBudget) {
  add_jobs(2);
  script_ = [](const JobFile& job) {
    return seed_of(job) == 0 ? WorkerScript::failing(1, "boom") : WorkerScript::succeeding(1);
  };
  RunConfig c = config();
  c.retries = 1;
  ASSERT_TRUE(run(c).ok());
  ASSERT_EQ(job(0).attempt, 2);
  EXPECT_EQ(*store_->extra_attempts(job_id(0)), 0);

  auto requeued = requeue_for_retry(*store_, sweep_id_, {JobState::kFailed});
  ASSERT_TRUE(requeued.ok());
  EXPECT_EQ(*requeued, 1);  // the succeeded job stays as it is
  EXPECT_EQ(job(0).state, JobState::kPending);
  EXPECT_EQ(*store_->extra_attempts(job_id(0)), 2);

  ASSERT_TRUE(run(c).ok());
  EXPECT_EQ(job(0).state, JobState::kFailed);
  EXPECT_EQ(job(0).attempt, 4);  // two more: retries + 1 again
  EXPECT_EQ(job(1).attempt, 1);
}

TEST_F(RunLoopRetry, ADivergedJobIsNeverRetried) {
  add_jobs(2);
  script_ = [](const JobFile& job) {
    if (seed_of(job) == 0) return WorkerScript::failing(3, "loss is NaN at step 3", true);
    // A NaN loss and an exit without a final event is divergence too.
    double nan = std::numeric_limits<double>::quiet_NaN();
    return WorkerScript::training(2).emit(3, ProgressEvent{3, {{"train_loss", nan}}}).exit(3, 3);
  };
  RunConfig c = config();
  c.retries = 3;
  ASSERT_TRUE(run(c).ok());
  EXPECT_EQ(job(0).state, JobState::kDiverged);
  EXPECT_EQ(job(0).attempt, 1);
  EXPECT_EQ(job(0).error, "train: loss is NaN at step 3");
  EXPECT_EQ(job(1).state, JobState::kDiverged);
  EXPECT_EQ(job(1).attempt, 1);
  EXPECT_EQ(job(1).error, "loss became NaN/inf");
}

TEST_F(RunLoopRetry, AJobPastMaxJobTimeGetsSigtermThenSigkillAfterTheGraceAndFails) {
  add_jobs(1);
  script_ = [](const JobFile&) { return WorkerScript::training(100).ignore_term(); };
  RunConfig c = config();
  c.max_job_time_s = 10;
  c.term_grace_s = 5;
  c.retries = 2;
  ASSERT_TRUE(run(c).ok());
  const FakeExecutor::Launch& launch = executor_.launches().at(0);
  auto signals = executor_.signals_to(launch.pid);
  ASSERT_EQ(signals.size(), 2u);
  EXPECT_FALSE(signals[0].kill);
  EXPECT_GT(signals[0].at - launch.at, 10);
  EXPECT_TRUE(signals[1].kill);
  EXPECT_GT(signals[1].at - signals[0].at, 5);
  JobRecord j = job(0);
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.attempt, 1);  // not retried: it would hit the limit again
  EXPECT_EQ(j.error, "ran past max_job_time (10 s)");
  EXPECT_EQ(j.exit_code, 137);
}

TEST_F(RunLoopRetry, AWorkerThatStopsOnSigtermAfterMaxJobTimeIsNotKilled) {
  add_jobs(1);
  script_ = [](const JobFile&) { return WorkerScript::training(100); };
  RunConfig c = config();
  c.max_job_time_s = 10;
  ASSERT_TRUE(run(c).ok());
  auto signals = executor_.signals_to(executor_.launches().at(0).pid);
  ASSERT_EQ(signals.size(), 1u);
  EXPECT_FALSE(signals[0].kill);
  EXPECT_EQ(job(0).state, JobState::kFailed);
  EXPECT_EQ(job(0).error, "ran past max_job_time (10 s)");
}

TEST_F(RunLoopRetry, AWorkerThatVanishesWithoutAFinalEventIsLostAndRequeuedWhileRetriesAllow) {
  add_jobs(2);
  script_ = [](const JobFile& job) {
    if (seed_of(job) == 0 && job.attempt > 1) return WorkerScript::succeeding(3);
    return WorkerScript::training(2).vanish(2);
  };
  RunConfig c = config();
  c.retries = 1;
  ASSERT_TRUE(run(c).ok());
  auto tries = attempts(0);
  ASSERT_EQ(tries.size(), 2u);
  EXPECT_EQ(tries[0].state, "lost");
  EXPECT_EQ(tries[0].exit_code, std::nullopt);
  EXPECT_EQ(tries[0].error, "worker process " + std::to_string(executor_.launches()[0].pid) +
                                " vanished without a final event");
  EXPECT_EQ(job(0).state, JobState::kSucceeded);
  EXPECT_EQ(job(1).state, JobState::kLost);  // lost twice: no attempt left
  EXPECT_EQ(job(1).attempt, 2);
}

TEST(RetryPolicy, FailuresAreRetriedWhileAttemptsRemainButDivergenceIsFinal) {
  EXPECT_EQ(allowed_attempts(/*retries=*/2, /*extra_attempts=*/0), 3);
  EXPECT_EQ(allowed_attempts(/*retries=*/2, /*extra_attempts=*/3), 6);
  EXPECT_TRUE(decide_retry(AttemptEnd::kFailed, 1, 3).requeue);
  EXPECT_FALSE(decide_retry(AttemptEnd::kFailed, 3, 3).requeue);
  EXPECT_EQ(decide_retry(AttemptEnd::kFailed, 3, 3).recorded, JobState::kFailed);
  EXPECT_FALSE(decide_retry(AttemptEnd::kDiverged, 1, 3).requeue);
  EXPECT_EQ(decide_retry(AttemptEnd::kDiverged, 1, 3).recorded, JobState::kDiverged);
  EXPECT_EQ(decide_retry(AttemptEnd::kLost, 1, 2).recorded, JobState::kLost);
  EXPECT_TRUE(decide_retry(AttemptEnd::kLost, 1, 2).requeue);
  EXPECT_FALSE(decide_retry(AttemptEnd::kLost, 2, 2).requeue);
  EXPECT_TRUE(decide_retry(AttemptEnd::kOrphaned, 5, 1).requeue);
  EXPECT_EQ(decide_retry(AttemptEnd::kTimedOut, 1, 5).recorded, JobState::kFailed);
  EXPECT_FALSE(decide_retry(AttemptEnd::kTimedOut, 1, 5).requeue);
  EXPECT_EQ(decide_retry(AttemptEnd::kStopped, 1, 1).recorded, JobState::kPending);
  EXPECT_EQ(decide_retry(AttemptEnd::kCancelled, 1, 3).recorded, JobState::kCancelled);
  EXPECT_FALSE(can_retry_from(JobState::kRunning));
  EXPECT_FALSE(can_retry_from(JobState::kPending));
  EXPECT_TRUE(can_retry_from(JobState::kSucceeded));
  EXPECT_EQ(extra_attempts_for_retry(4), 4);
}

TEST(RetryPolicy, ASchemaOneDatabaseKeepsTheAttemptsSweepRetryGranted) {
  std::string path =
      (std::filesystem::temp_directory_path() / ("sweep-v1-" + std::to_string(::getpid()) + ".db"))
          .string();
  std::filesystem::remove(path);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  std::string v1 = std::string(schema_migrations().at(0).sql) +
                   "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL);"
                   "INSERT INTO schema_version VALUES (1, 0);"
                   "INSERT INTO sweeps (name, created_at, updated_at) VALUES ('s', 0, 0);"
                   "INSERT INTO jobs (sweep_id, hash, grid_index, params, created_at, info) VALUES "
                   "(1, 'a', 0, '{}', 0, '{\"retry_base\": 2, \"started\": {}}'),"
                   "(1, 'b', 1, '{}', 0, '{}');";
  ASSERT_EQ(sqlite3_exec(raw, v1.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(raw);
  sqlite3_close(raw);

  auto store = Store::open(path);
  ASSERT_TRUE(store.ok()) << store.error().to_string();
  EXPECT_EQ((*store)->schema_version(), latest_schema_version());
  auto jobs = *(*store)->list_jobs(1);
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(*(*store)->extra_attempts(jobs[0].id), 2);
  EXPECT_EQ(jobs[0].info_json, R"({"started":{}})");
  EXPECT_EQ(*(*store)->extra_attempts(jobs[1].id), 0);
  store->reset();
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
}

}  // namespace
}  // namespace sweep::testing
