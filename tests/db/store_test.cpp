#include "db/store.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "db/schema.h"
#include "tests/db/store_test_util.h"

namespace sweep {
namespace {

namespace fs = std::filesystem;
using namespace sweep::testing;

TEST(StoreMigrations, EmptyFileIsMigratedToTheLatestVersion) {
  TempDir dir;
  auto store = open_ok(dir.file("nested/dir/sweep.db"));
  ASSERT_TRUE(store);
  EXPECT_EQ(store->schema_version(), latest_schema_version());
  auto tables = store->query_readonly(
      "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name");
  ASSERT_TRUE(tables.ok()) << tables.error().to_string();
  std::vector<std::string> names;
  for (const auto& row : tables->rows) names.push_back(*row[0]);
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "attempts", "checkpoints", "decisions", "eval_best", "eval_counts", "eval_metrics",
                "evals", "job_counts", "job_progress", "jobs", "leaderboard", "learning_checks",
                "metrics", "predictions", "schema_version", "sweep_progress", "sweeps"}));
  auto mode = store->query_readonly("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok()) << mode.error().to_string();
  EXPECT_EQ(*mode->rows[0][0], "wal");
  auto fk = store->query_readonly("PRAGMA foreign_keys");
  ASSERT_TRUE(fk.ok());
  EXPECT_EQ(*fk->rows[0][0], "1");
}

TEST(StoreMigrations, InMemoryDatabaseWorks) {
  auto store = open_ok(":memory:");
  ASSERT_TRUE(store);
  EXPECT_EQ(store->schema_version(), latest_schema_version());
  EXPECT_GT(add_sweep(*store), 0);
}

TEST(StoreMigrations, ReopenKeepsDataAndDoesNotReapplySteps) {
  TempDir dir;
  std::string path = dir.file("sweep.db");
  {
    auto store = open_ok(path);
    int64_t sweep = add_sweep(*store);
    ASSERT_TRUE(store->upsert_jobs(sweep, make_jobs(3)).ok());
  }
  auto store = open_ok(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(count_rows(*store, "jobs"), 3);
  EXPECT_EQ(count_rows(*store, "schema_version"), latest_schema_version());
}

TEST(StoreMigrations, NewerSchemaVersionIsRefused) {
  TempDir dir;
  std::string path = dir.file("sweep.db");
  ASSERT_TRUE(open_ok(path));
  // A database written by a future sweep: record version 99 with a plain connection.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(raw, "INSERT INTO schema_version VALUES (99, 0)", nullptr, nullptr, nullptr),
      SQLITE_OK)
      << sqlite3_errmsg(raw);
  sqlite3_close(raw);

  auto store = Store::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, ErrorKind::kUser);
  EXPECT_NE(store.error().message.find("has schema version 99, newer than this sweep supports (" +
                                       std::to_string(latest_schema_version()) + ")"),
            std::string::npos)
      << store.error().message;
  auto readonly = Store::open_readonly(path);
  ASSERT_FALSE(readonly.ok());
  EXPECT_NE(readonly.error().message.find("schema version 99"), std::string::npos);
}

TEST(StoreOpen, ReadOnlyOpenOfMissingFileIsNotFoundAndCreatesNothing) {
  TempDir dir;
  std::string path = dir.file("missing.db");
  auto store = Store::open_readonly(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(store.error().message, "database " + path + " does not exist");
  EXPECT_NE(store.error().hint.find("sweep run SPEC.yaml"), std::string::npos);
  EXPECT_FALSE(fs::exists(path));
}

TEST(StoreJobs, UpsertingTheSameJobsTwiceAddsNothing) {
  auto store = open_ok(":memory:");
  int64_t sweep = add_sweep(*store);
  auto first = store->upsert_jobs(sweep, make_jobs(6));
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  EXPECT_EQ(first->added, 6);
  EXPECT_EQ(first->existing, 0);
  auto again = store->upsert_jobs(sweep, make_jobs(6));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->added, 0);
  EXPECT_EQ(again->existing, 6);
  EXPECT_EQ(count_rows(*store, "jobs"), 6);
  EXPECT_EQ(add_sweep(*store), sweep) << "the same sweep name keeps its id";
}

TEST(StoreJobs, GrownGridAddsOnlyNewPointsAndKeepsExistingJobsUntouched) {
  auto store = open_ok(":memory:");
  int64_t sweep = add_sweep(*store);
  ASSERT_TRUE(store->upsert_jobs(sweep, make_jobs(6)).ok());
  auto jobs = store->list_jobs(sweep);
  ASSERT_TRUE(jobs.ok());
  int64_t done_id = (*jobs)[2].id;
  ASSERT_TRUE(store->start_attempt(done_id, 123, "host", "cpu:0", "runs/r_alpha/2").ok());
  ASSERT_TRUE(store->finish_attempt(done_id, JobState::kSucceeded, 0, "").ok());

  auto grown = store->upsert_jobs(sweep, make_jobs(9));
  ASSERT_TRUE(grown.ok());
  EXPECT_EQ(grown->added, 3);
  EXPECT_EQ(grown->existing, 6);
  auto job = store->get_job(done_id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kSucceeded);
  EXPECT_EQ(job->attempt, 1);
  auto counts = store->count_by_state(sweep);
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[JobState::kPending], 8);
  EXPECT_EQ((*counts)[JobState::kSucceeded], 1);
  EXPECT_EQ((*counts)[JobState::kFailed], 0);
}

TEST(StoreJobs, SameHashInTwoSweepsIsTwoJobs) {
  auto store = open_ok(":memory:");
  ASSERT_TRUE(store->upsert_jobs(add_sweep(*store, "a"), make_jobs(2)).ok());
  ASSERT_TRUE(store->upsert_jobs(add_sweep(*store, "b"), make_jobs(2)).ok());
  EXPECT_EQ(count_rows(*store, "jobs"), 4);
  auto sweeps = store->list_sweeps();
  ASSERT_TRUE(sweeps.ok());
  ASSERT_EQ(sweeps->size(), 2u);
  EXPECT_EQ((*sweeps)[1].name, "b");
  auto found = store->find_sweep("a");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->spec_path, "sweeps/a.yaml");
  auto missing = store->find_sweep("zzz");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

// Two processes run the same `sweep run` at once: both open a new file, migrate it, record the
// sweep and upsert the same 500 jobs. Each job must exist once.
TEST(StoreJobs, TwoProcessesUpsertingTheSameJobsAtOnceRecordEachOnce) {
  TempDir dir;
  std::string path = dir.file("sweep.db");
  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  std::vector<pid_t> children;
  for (int i = 0; i < 2; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(gate[1]);
      char c;
      (void)!::read(gate[0], &c, 1);  // returns 0 when the parent closes the pipe: both start
      auto store = Store::open(path);
      if (!store.ok()) {
        std::fprintf(stderr, "child open: %s\n", store.error().to_string().c_str());
        ::_exit(10);
      }
      auto sweep = (*store)->upsert_sweep("r_alpha", "x.yaml", "{}", "val_loss", "min");
      if (!sweep.ok()) {
        std::fprintf(stderr, "child sweep: %s\n", sweep.error().to_string().c_str());
        ::_exit(11);
      }
      auto stats = (*store)->upsert_jobs(*sweep, make_jobs(500));
      if (!stats.ok()) {
        std::fprintf(stderr, "child jobs: %s\n", stats.error().to_string().c_str());
        ::_exit(12);
      }
      ::_exit(stats->added + stats->existing == 500 ? 0 : 13);
    }
    children.push_back(pid);
  }
  ::close(gate[0]);
  ::close(gate[1]);
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  auto store = open_ok(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(count_rows(*store, "jobs"), 500);
  EXPECT_EQ(count_rows(*store, "sweeps"), 1);
  EXPECT_EQ(count_rows(*store, "schema_version"), latest_schema_version());
}

TEST(StoreAttempts, RetriesKeepEveryAttemptRecord) {
  auto store = open_ok(":memory:");
  int64_t sweep = add_sweep(*store);
  ASSERT_TRUE(store->upsert_jobs(sweep, make_jobs(1)).ok());
  int64_t id = (*store->list_jobs(sweep))[0].id;
  ASSERT_TRUE(store->start_attempt(id, 100, "h1", "cuda:0", "runs/r_alpha/1").ok());
  ASSERT_TRUE(store->finish_attempt(id, JobState::kLost, std::nullopt, "process vanished").ok());
  ASSERT_TRUE(store->set_state(id, JobState::kPending).ok());
  ASSERT_TRUE(store->start_attempt(id, 200, "h2", "cuda:1", "runs/r_alpha/1").ok());
  auto running = store->get_job(id);
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->state, JobState::kRunning);
  EXPECT_EQ(running->error, "") << "a new attempt clears the previous error";
  ASSERT_TRUE(store->finish_attempt(id, JobState::kFailed, 3, "stage model_load: boom").ok());

  auto job = store->get_job(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kFailed);
  EXPECT_EQ(job->attempt, 2);
  EXPECT_EQ(job->pid, 200);
  EXPECT_EQ(job->device, "cuda:1");
  EXPECT_EQ(job->exit_code, 3);
  EXPECT_EQ(job->error, "stage model_load: boom");
  EXPECT_GT(job->finished_at, 0);
  auto attempts = store->attempts(id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 2u);
  EXPECT_EQ((*attempts)[0].state, "lost");
  EXPECT_EQ((*attempts)[0].error, "process vanished");
  EXPECT_FALSE((*attempts)[0].exit_code.has_value());
  EXPECT_EQ((*attempts)[1].state, "failed");
  EXPECT_EQ((*attempts)[1].host, "h2");
  EXPECT_EQ((*attempts)[1].exit_code, 3);
}

TEST(StoreAttempts, UnknownJobIsNotFoundNamingIt) {
  auto store = open_ok(":memory:");
  Status status = store->set_state(42, JobState::kCancelled);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(status.error().message, "job 42 does not exist in :memory:");
  auto job = store->get_job(42);
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.error().message, "job 42 does not exist in :memory:");
}

TEST(JobStates, NamesRoundTrip) {
  for (JobState s : all_job_states()) EXPECT_EQ(parse_job_state(to_string(s)), s);
  EXPECT_FALSE(parse_job_state("done").has_value());
  EXPECT_TRUE(is_final(JobState::kDiverged));
  EXPECT_FALSE(is_final(JobState::kLost));
  EXPECT_FALSE(is_final(JobState::kRunning));
}

TEST_F(StoreWithJobs, IngestingTheSameEventsTwiceChangesNothing) {
  int64_t id = ids_[0];
  auto ingest = [&] {
    return store_->transaction([&]() -> Status {
      SWEEP_RETURN_IF_ERROR(store_->add_metrics(id, 1, 10, {{"train_loss", 2.5}, {"lr", 1e-4}}));
      SWEEP_RETURN_IF_ERROR(store_->add_metrics(id, 1, 20, {{"train_loss", 2.0}, {"lr", 2e-4}}));
      SWEEP_RETURN_IF_ERROR(
          store_->add_eval(id, 1, 20, {{"val_loss", 1.5}, {"val_token_acc", 0.4}}));
      SWEEP_RETURN_IF_ERROR(
          store_->add_checkpoint(id, 20, "runs/r_alpha/1/checkpoint-20", "{\"val_loss\":1.5}"));
      return store_->set_cursor(id, 4096, 7);
    });
  };
  ASSERT_TRUE(ingest().ok());
  Status again = ingest();
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_EQ(count_rows(*store_, "metrics"), 4);
  EXPECT_EQ(count_rows(*store_, "eval_metrics"), 2);
  EXPECT_EQ(count_rows(*store_, "checkpoints"), 1);
  auto job = store_->get_job(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->events_offset, 4096u);
  EXPECT_EQ(job->last_seq, 7);
  auto curve = store_->metric_curve(id, "train_loss");
  ASSERT_TRUE(curve.ok());
  EXPECT_EQ(*curve, (std::vector<std::pair<int64_t, double>>{{10, 2.5}, {20, 2.0}}));
  auto latest = store_->latest_metrics(id);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ((*latest)["step"], 20);
  EXPECT_EQ((*latest)["train_loss"], 2.0);
  auto evals = store_->evals(id);
  ASSERT_TRUE(evals.ok());
  ASSERT_EQ(evals->size(), 1u);
  EXPECT_EQ((*evals)[0].step, 20);
  EXPECT_EQ((*evals)[0].metrics.at("val_token_acc"), 0.4);
}

TEST_F(StoreWithJobs, FailedTransactionLeavesNoRowsAndNoCursor) {
  int64_t id = ids_[0];
  Status status = store_->transaction([&]() -> Status {
    SWEEP_RETURN_IF_ERROR(store_->add_metrics(id, 1, 10, {{"train_loss", 2.5}}));
    SWEEP_RETURN_IF_ERROR(store_->set_cursor(id, 100, 3));
    return make_error(ErrorKind::kInternal, "ingestion stopped");
  });
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "ingestion stopped");
  EXPECT_EQ(count_rows(*store_, "metrics"), 0);
  EXPECT_EQ(store_->get_job(id)->events_offset, 0u);
}

TEST_F(StoreWithJobs, MetricsOfAnUnknownJobAreRefusedByTheForeignKey) {
  Status status = store_->add_metrics(999, 1, 1, {{"train_loss", 1.0}});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kDatabase);
  EXPECT_NE(status.error().message.find("recording metrics of job 999 at step 1: FOREIGN KEY"),
            std::string::npos)
      << status.error().message;
}

TEST_F(StoreWithJobs, CheckpointsCanBeMarkedDeleted) {
  int64_t id = ids_[1];
  ASSERT_TRUE(store_->add_checkpoint(id, 10, "ck-10", "{}").ok());
  ASSERT_TRUE(store_->add_checkpoint(id, 20, "ck-20", "").ok());
  ASSERT_TRUE(store_->mark_checkpoint_deleted(id, "ck-10").ok());
  auto rows = store_->checkpoints(id);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_FALSE((*rows)[0].kept);
  EXPECT_TRUE((*rows)[1].kept);
  EXPECT_EQ((*rows)[1].metrics_json, "{}");
  Status missing = store_->mark_checkpoint_deleted(id, "ck-99");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "checkpoint ck-99 of job " + std::to_string(id) + " was never recorded");
}

TEST_F(StoreWithJobs, JobInfoKeysAreMerged) {
  int64_t id = ids_[0];
  ASSERT_TRUE(store_->set_job_info(id, "started", R"({"torch":"1.13"})").ok());
  ASSERT_TRUE(store_->set_job_info(id, "finished", R"({"best_step":40})").ok());
  EXPECT_EQ(store_->get_job(id)->info_json,
            R"({"finished":{"best_step":40},"started":{"torch":"1.13"}})");
  Status bad = store_->set_job_info(id, "x", "{not json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kUser);
}

// Job 0: best val_loss 0.9 at step 20. Job 1: 0.7 at step 40 (succeeded). Job 2: 0.5 but failed.
// Job 3: running, 0.8 at step 10.
class Leaderboard : public StoreWithJobs {
 protected:
  void SetUp() override {
    StoreWithJobs::SetUp();
    auto eval = [&](int job, int64_t step, double loss, double acc) {
      ASSERT_TRUE(
          store_->add_eval(ids_[job], 1, step, {{"val_loss", loss}, {"val_token_acc", acc}}).ok());
    };
    for (int j = 0; j < 4; ++j)
      ASSERT_TRUE(store_->start_attempt(ids_[j], 1, "h", "cpu", "d").ok());
    eval(0, 10, 1.2, 0.30);
    eval(0, 20, 0.9, 0.50);
    eval(0, 30, 0.95, 0.55);
    eval(1, 20, 1.0, 0.40);
    eval(1, 40, 0.7, 0.45);
    eval(2, 10, 0.5, 0.90);
    eval(3, 10, 0.8, 0.20);
    ASSERT_TRUE(store_->add_checkpoint(ids_[1], 40, "runs/r_alpha/2/checkpoint-40", "{}").ok());
    ASSERT_TRUE(store_->finish_attempt(ids_[0], JobState::kSucceeded, 0, "").ok());
    ASSERT_TRUE(store_->finish_attempt(ids_[1], JobState::kSucceeded, 0, "").ok());
    ASSERT_TRUE(store_->finish_attempt(ids_[2], JobState::kFailed, 1, "oom").ok());
  }
  std::vector<int64_t> order(const std::vector<LeaderRow>& rows) {
    std::vector<int64_t> ids;
    for (const auto& r : rows) ids.push_back(r.job_id);
    return ids;
  }
};

TEST_F(Leaderboard, MinimizedMetricRanksLowestFirstAndSkipsFailedJobs) {
  auto rows = store_->leaderboard(sweep_, "val_loss", /*maximize=*/false);
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(order(*rows), (std::vector<int64_t>{ids_[1], ids_[3], ids_[0]}));
  const LeaderRow& best = (*rows)[0];
  EXPECT_EQ(best.objective, 0.7);
  EXPECT_EQ(best.best_step, 40);
  EXPECT_EQ(best.state, "succeeded");
  EXPECT_EQ(best.checkpoint_path, "runs/r_alpha/2/checkpoint-40");
  EXPECT_EQ(best.metrics.at("val_token_acc"), 0.45);
  EXPECT_EQ((*rows)[2].best_step, 20);
  EXPECT_EQ((*rows)[2].checkpoint_path, "");
}

TEST_F(Leaderboard, MaximizedMetricRanksHighestFirst) {
  auto rows = store_->leaderboard(sweep_, "val_token_acc", /*maximize=*/true);
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(order(*rows), (std::vector<int64_t>{ids_[0], ids_[1], ids_[3]}));
  EXPECT_EQ((*rows)[0].objective, 0.55);
  EXPECT_EQ((*rows)[0].best_step, 30);
}

TEST_F(Leaderboard, ViewFollowsTheSweepObjective) {
  auto rows = store_->query_readonly(
      "SELECT rank, job_id, objective, best_step, checkpoint_path, lora_r FROM leaderboard "
      "WHERE sweep = 'r_alpha' ORDER BY rank");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  ASSERT_EQ(rows->rows.size(), 3u);
  EXPECT_EQ(*rows->rows[0][0], "1");
  EXPECT_EQ(*rows->rows[0][1], std::to_string(ids_[1]));
  EXPECT_EQ(*rows->rows[0][2], "0.7");
  EXPECT_EQ(*rows->rows[0][3], "40");
  EXPECT_EQ(*rows->rows[0][4], "runs/r_alpha/2/checkpoint-40");
  EXPECT_EQ(*rows->rows[0][5], "8");
  EXPECT_FALSE(rows->rows[2][4].has_value());
  EXPECT_TRUE(rows->numeric_column[2]);
  EXPECT_FALSE(rows->numeric_column[4]);
}

TEST_F(Leaderboard, KeptCheckpointsAreRankedByTheEvalAtTheirStep) {
  // Job 0 kept steps 20 (0.9) and 30 (0.95) but its retention deleted step 20; running job 3 and
  // failed job 2 are not finished.
  ASSERT_TRUE(store_->add_checkpoint(ids_[0], 20, "ck-0-20", "{}").ok());
  ASSERT_TRUE(store_->add_checkpoint(ids_[0], 30, "ck-0-30", "{}").ok());
  ASSERT_TRUE(store_->add_checkpoint(ids_[2], 10, "ck-2-10", "{}").ok());
  ASSERT_TRUE(store_->add_checkpoint(ids_[3], 10, "ck-3-10", "{}").ok());
  ASSERT_TRUE(store_->add_checkpoint(ids_[1], 25, "ck-1-25", "{}").ok());  // no eval at step 25
  ASSERT_TRUE(store_->mark_checkpoint_deleted(ids_[0], "ck-0-20").ok());
  auto kept = store_->kept_checkpoints(sweep_, "val_loss", /*maximize=*/false);
  ASSERT_TRUE(kept.ok()) << kept.error().to_string();
  ASSERT_EQ(kept->size(), 2u);
  EXPECT_EQ((*kept)[0].path, "runs/r_alpha/2/checkpoint-40");
  EXPECT_EQ((*kept)[0].job_id, ids_[1]);
  EXPECT_EQ((*kept)[0].hash, "hash1");
  EXPECT_EQ((*kept)[0].step, 40);
  EXPECT_EQ((*kept)[0].value, 0.7);
  EXPECT_EQ((*kept)[1].path, "ck-0-30");
  EXPECT_EQ((*kept)[1].value, 0.95);
  auto by_acc = store_->kept_checkpoints(sweep_, "val_token_acc", /*maximize=*/true);
  ASSERT_TRUE(by_acc.ok());
  ASSERT_EQ(by_acc->size(), 2u);
  EXPECT_EQ((*by_acc)[0].path, "ck-0-30");  // 0.55 beats 0.45
  // The leaderboard's checkpoint column follows kept: job 0's best step 20 shows none.
  auto rows = store_->leaderboard(sweep_, "val_loss", false);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[2].job_id, ids_[0]);
  EXPECT_EQ((*rows)[2].checkpoint_path, "");
}

TEST_F(Leaderboard, BestObjectivesIncludeEveryState) {
  auto best = store_->best_objectives(sweep_, "val_loss", false);
  ASSERT_TRUE(best.ok());
  EXPECT_EQ(best->size(), 4u);
  EXPECT_EQ(best->at(ids_[2]), 0.5);
}

// Statements that must be refused, with what the refusal names.
}  // namespace
}  // namespace sweep
