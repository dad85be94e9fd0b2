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
#include "protocol/exit_codes.h"
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

TEST_F(RunLoopRetry, ADiskFullJobIsNotRetriedBlindly) {
  add_jobs(2);
  script_ = [](const JobFile& job) {
    if (seed_of(job) == 0) {
      FailedEvent full{"checkpoint",
                       "/runs/job1/checkpoints: cannot create directory: No space "
                       "left on device"};
      full.disk_full = true;
      return WorkerScript::training(2).emit(2, full).exit(2, kExitDiskFull);
    }
    // The failed event could not be written either (the events file is on the full disk).
    return WorkerScript::training(2).exit(2, kExitDiskFull);
  };
  RunConfig c = config();
  c.retries = 3;
  ASSERT_TRUE(run(c).ok());
  for (int i : {0, 1}) {
    EXPECT_EQ(job(i).state, JobState::kFailed) << i;
    EXPECT_EQ(job(i).attempt, 1) << i;  // not re-queued onto the same full disk
    EXPECT_EQ(job(i).exit_code, kExitDiskFull) << i;
  }
  EXPECT_EQ(job(0).error,
            "checkpoint: /runs/job1/checkpoints: cannot create directory: No space left on device");
  // Once space is freed, `sweep retry` runs them again.
  auto requeued = requeue_for_retry(*store_, sweep_id_, {JobState::kFailed});
  ASSERT_TRUE(requeued.ok());
  EXPECT_EQ(*requeued, 2);
}

TEST_F(RunLoopRetry, BadInputThatCanOnlyFailAgainIsNotRetried) {
  add_jobs(2);
  script_ = [](const JobFile& job) {
    if (seed_of(job) == 0) {
      FailedEvent bad{"load_model", "safetensors file /m/model.safetensors: truncated"};
      bad.bad_input = true;
      return WorkerScript::training(0).emit(1, bad).exit(1, kExitBadInput);
    }
    return WorkerScript::training(2).exit(2, kExitBadInput);  // no final event, exit code 1
  };
  RunConfig c = config();
  c.retries = 3;
  ASSERT_TRUE(run(c).ok());
  for (int i : {0, 1}) {
    EXPECT_EQ(job(i).state, JobState::kFailed) << i;
    EXPECT_EQ(job(i).attempt, 1) << i;
    EXPECT_EQ(job(i).exit_code, kExitBadInput) << i;
  }
}

// Every SQLite connection opened while this is > 0 gets PRAGMA max_page_count = it: a database
// that can grow by a few pages only, as on a full disk (SQLITE_FULL).
int page_limit = 0;

int limit_pages(sqlite3* db, char**, const sqlite3_api_routines*) {
  if (page_limit > 0) {
    const std::string pragma = "PRAGMA max_page_count = " + std::to_string(page_limit);
    sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, nullptr);
  }
  return SQLITE_OK;
}

TEST_F(RunLoopRetry, AFullDatabaseStopsTheLoopWithAClearErrorAndARerunLosesNothing) {
  const std::string db = root_ + "/sweep.db";
  store_ = std::move(Store::open(db).value());
  sweep_id_ = *store_->upsert_sweep("s", root_ + "/s.yaml", "{}", "val_loss", "min");
  add_jobs(4);
  store_.reset();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA page_count", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  const int pages = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(raw);

  page_limit = pages + 2;
  sqlite3_auto_extension(reinterpret_cast<void (*)()>(limit_pages));
  store_ = std::move(Store::open(db).value());
  page_limit = 0;
  sqlite3_cancel_auto_extension(reinterpret_cast<void (*)()>(limit_pages));
  script_ = [](const JobFile&) { return WorkerScript::succeeding(300); };
  auto stopped = run(config());
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.error().kind, ErrorKind::kDatabase);
  EXPECT_NE(stopped.error().message.find("full"), std::string::npos) << stopped.error().message;

  // Space freed: a new connection without the limit, and the same run again.
  store_ = std::move(Store::open(db).value());
  auto rerun = run(config());
  ASSERT_TRUE(rerun.ok()) << rerun.error().message;
  for (int seed = 0; seed < 4; ++seed) {
    EXPECT_EQ(job(seed).state, JobState::kSucceeded) << seed;
    auto curve = store_->metric_curve(job_id(seed), "train_loss");
    ASSERT_TRUE(curve.ok());
    ASSERT_EQ(curve->size(), 300u) << seed;  // every step once: nothing lost, nothing twice
    for (size_t i = 0; i < curve->size(); ++i)
      EXPECT_EQ((*curve)[i].first, static_cast<int64_t>(i) + 1) << seed;
  }
}

TEST(RetryPolicy, DiskFullAndBadInputAreFinalWhateverTheBudget) {
  for (AttemptEnd end : {AttemptEnd::kDiskFull, AttemptEnd::kBadInput}) {
    RetryDecision d = decide_retry(end, /*attempt=*/1, /*allowed=*/5);
    EXPECT_EQ(d.recorded, JobState::kFailed);
    EXPECT_FALSE(d.requeue);
  }
  EXPECT_TRUE(decide_retry(AttemptEnd::kFailed, 1, 5).requeue);  // an unknown failure is retried
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
