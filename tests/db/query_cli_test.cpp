// Runs the built `sweep` binary: `sweep query` refuses writes and leaves the database unchanged,
// `sweep jobs` lists jobs, and neither creates a database.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "db/store.h"
#include "tests/common/cli_run.h"

#ifndef SWEEP_BIN
#error "SWEEP_BIN must name the sweep executable"
#endif

namespace sweep {
namespace {

namespace fs = std::filesystem;

using testing::RunResult;
using testing::shell_quote;

class SweepCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "sweep_cli_test_XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    db_ = dir_ + "/sweep.db";
    auto store = Store::open(db_);
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    auto sweep = (*store)->upsert_sweep("r_alpha", "sweeps/r_alpha.yaml", "{}", "val_loss", "min");
    ASSERT_TRUE(sweep.ok());
    std::vector<NewJob> jobs;
    for (int i = 0; i < 3; ++i) {
      jobs.push_back(NewJob{"h" + std::to_string(i), i,
                            "{\"lora_r\":" + std::to_string(4 << i) +
                                ",\"lora_alpha\":16,\"learning_rate\":0.0003,\"batch_size\":8}",
                            1.0});
    }
    ASSERT_TRUE((*store)->upsert_jobs(*sweep, jobs).ok());
    auto first = (*store)->list_jobs(*sweep);
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE((*store)->add_eval((*first)[1].id, 1, 40, {{"val_loss", 0.75}}).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `env sweep args`.
  RunResult run(const std::string& args, const std::string& env = "") {
    return testing::run_program(SWEEP_BIN, args, dir_, env);
  }

  int64_t job_count() {
    auto store = Store::open_readonly(db_);
    EXPECT_TRUE(store.ok());
    auto rows = (*store)->query_readonly("SELECT COUNT(*) FROM jobs");
    EXPECT_TRUE(rows.ok());
    return std::stoll(*rows->rows[0][0]);
  }

  std::string dir_, db_;
};

TEST_F(SweepCli, QueryRefusesWritesWithExitCodeOneAndLeavesTheDatabaseUnchanged) {
  const char* writes[] = {"DELETE FROM jobs", "ATTACH DATABASE 'other.db' AS other",
                          "PRAGMA journal_mode=DELETE", "CREATE TABLE t (x)",
                          "SELECT 1; DELETE FROM jobs"};
  for (const char* sql : writes) {
    RunResult r = run("--db " + shell_quote(db_) + " query " + shell_quote(sql));
    EXPECT_EQ(r.exit_code, 1) << sql;
    EXPECT_EQ(r.err.rfind("error: sweep query is read-only: ", 0), 0u) << sql << ": " << r.err;
    EXPECT_EQ(r.out, "") << sql;
  }
  EXPECT_EQ(job_count(), 3);
  EXPECT_FALSE(fs::exists("other.db"));
  auto store = Store::open_readonly(db_);
  ASSERT_TRUE(store.ok());
  auto mode = (*store)->query_readonly("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok());
  EXPECT_EQ(*mode->rows[0][0], "wal");
}

TEST_F(SweepCli, QueryPrintsJsonFromTheDatabaseNamedBySweepDb) {
  RunResult r =
      run("query 'SELECT id, hash, json_extract(params, \"$.lora_r\") AS r FROM jobs "
          "ORDER BY id' --format json",
          "SWEEP_DB=" + shell_quote(db_));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2]["hash"], "h2");
  EXPECT_EQ(rows[2]["r"], 16);
}

TEST_F(SweepCli, QueryOnAMissingDatabaseFailsWithoutCreatingIt) {
  std::string missing = dir_ + "/none/sweep.db";
  RunResult r = run("--db " + shell_quote(missing) + " query 'SELECT 1'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "error: database " + missing +
                       " does not exist\nhint: run `sweep run SPEC.yaml` first, or point --db / "
                       "SWEEP_DB at the database\n");
  EXPECT_FALSE(fs::exists(dir_ + "/none"));
}

TEST_F(SweepCli, JobsListsEveryJobWithParamsAndBestObjective) {
  RunResult r = run("jobs --db " + shell_quote(db_) + " --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The csv always has the error column (a failed job's first error line), empty here.
  EXPECT_EQ(r.out,
            "id,hash,state,attempt,lora_r,lora_alpha,learning_rate,batch_size,best_val_loss,run_"
            "dir,error\n"
            "1,h0,pending,0,4,16,0.0003,8,,,\n"
            "2,h1,pending,0,8,16,0.0003,8,0.75,,\n"
            "3,h2,pending,0,16,16,0.0003,8,,,\n");
  RunResult none = run("jobs r_alpha --state running --db " + shell_quote(db_) + " --format csv");
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out,
            "id,hash,state,attempt,lora_r,lora_alpha,learning_rate,batch_size,best_val_loss,run_"
            "dir,error\n");
}

TEST_F(SweepCli, JobsWithoutANameNeedsASingleSweep) {
  {
    auto store = Store::open(db_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->upsert_sweep("lr_batch", "", "{}", "val_loss", "min").ok());
  }
  RunResult r = run("jobs --db " + shell_quote(db_));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: database " + db_ + " holds several sweeps: r_alpha, lr_batch"),
            std::string::npos)
      << r.err;
  RunResult bad = run("jobs nope --db " + shell_quote(db_));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("sweep 'nope' is not in database"), std::string::npos) << bad.err;
  RunResult state = run("jobs r_alpha --state done --db " + shell_quote(db_));
  EXPECT_EQ(state.exit_code, 1);
  EXPECT_NE(state.err.find("error: --state 'done' is not a job state"), std::string::npos);
}

TEST_F(SweepCli, UnknownCommandNamesTheNearestOne) {
  RunResult r = run("--db " + shell_quote(db_) + " leaderbord r_alpha");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("error: unknown command 'leaderbord'\nhint: did you mean `sweep "
                        "leaderboard`? (the commands: ",
                        0),
            0u)
      << r.err;
  RunResult far = run("frobnicate");
  EXPECT_EQ(far.exit_code, 1);
  EXPECT_EQ(far.err.rfind("error: unknown command 'frobnicate'\nhint: the commands are ", 0), 0u)
      << far.err;
  EXPECT_NE(far.err.find("leaderboard"), std::string::npos) << far.err;
}

// An endless recursive CTE stops at --timeout with an error naming the limit and how to raise it.
TEST_F(SweepCli, QueryStopsAtItsTimeLimit) {
  const std::string endless =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c";
  RunResult r = run("query " + shell_quote(endless) + " --timeout 0.2 --db " + shell_quote(db_));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("error: sweep query: stopped after the time limit of 0.2 s (--timeout)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("hint: raise it with --timeout SECONDS (0: no limit)"), std::string::npos)
      << r.err;
  RunResult bad = run("query 'SELECT 1' --timeout -1 --db " + shell_quote(db_));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--timeout must be a number of seconds >= 0"), std::string::npos)
      << bad.err;
}

// `sweep best` and the leaderboard's checkpoint column against checkpoints that are gone. Job h0:
// val_loss 0.5 at step 20 (its best) and 0.75 at step 40; job h1: 0.6 at step 30; job h2: 0.9 at
// step 10. Every job succeeded and kept a checkpoint at each evaluated step, on disk.
class BestCheckpoint : public SweepCli {
 protected:
  void SetUp() override {
    SweepCli::SetUp();
    auto store = Store::open(db_);
    ASSERT_TRUE(store.ok());
    auto sweeps = (*store)->list_sweeps();
    ASSERT_TRUE(sweeps.ok() && sweeps->size() == 1u);
    auto jobs = (*store)->list_jobs(sweeps->at(0).id);
    ASSERT_TRUE(jobs.ok());
    // h1's eval at step 40 replaces the one SweepCli recorded.
    const std::vector<std::vector<std::pair<int64_t, double>>> evals = {
        {{20, 0.5}, {40, 0.75}}, {{30, 0.6}, {40, 0.6}}, {{10, 0.9}}};
    for (size_t i = 0; i < jobs->size(); ++i) {
      const JobRecord& job = (*jobs)[i];
      ids_.push_back(job.id);
      ASSERT_TRUE((*store)->start_attempt(job.id, 100, "h", "cpu", dir_).ok());
      for (const auto& [step, loss] : evals[i]) {
        ASSERT_TRUE((*store)->add_eval(job.id, 1, step, {{"val_loss", loss}}).ok());
        std::string path = checkpoint(i, step);
        fs::create_directories(path);
        ASSERT_TRUE((*store)->add_checkpoint(job.id, step, path, "{}").ok());
      }
      ASSERT_TRUE((*store)->finish_attempt(job.id, JobState::kSucceeded, 0, "").ok());
    }
  }
  std::string checkpoint(size_t job, int64_t step) const {
    return dir_ + "/runs/h" + std::to_string(job) + "/checkpoints/step-" + std::to_string(step);
  }
  // The worker's retention deleted the checkpoint: kept = 0 and gone from disk.
  void worker_deleted(size_t job, int64_t step) {
    auto store = Store::open(db_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->mark_checkpoint_deleted(ids_[job], checkpoint(job, step)).ok());
    fs::remove_all(checkpoint(job, step));
  }
  std::vector<int64_t> ids_;
};

const std::string kNoBaseScore =
    "warning: the base model has no val_loss score (no step-0 evaluation), so whether job h0 "
    "beat it is not known\n";

TEST_F(BestCheckpoint, PrintsTheBestJobsCheckpointWhenItIsOnDisk) {
  RunResult r = run("best --db " + shell_quote(db_));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, checkpoint(0, 20) + "\n");
  // These jobs have no step-0 evaluation: the gain over the base cannot be known.
  EXPECT_EQ(r.err, kNoBaseScore);
}

TEST_F(BestCheckpoint, FallsBackToTheBestKeptCheckpointWhenTheWorkerDeletedTheBest) {
  worker_deleted(0, 20);
  RunResult r = run("best r_alpha --db " + shell_quote(db_));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // h1 at step 30 (0.6) beats h0's kept step 40 (0.75); ties at 0.6 go to the earlier step.
  EXPECT_EQ(r.out, checkpoint(1, 30) + "\n");
  EXPECT_EQ(r.err, kNoBaseScore +
                       "warning: the best checkpoint, job h0 at step 20 (val_loss 0.5), is gone: " +
                       checkpoint(0, 20) +
                       " was deleted by the worker's save_top_k retention; using the best kept "
                       "checkpoint instead: job h1 at step 30 (val_loss 0.6), " +
                       checkpoint(1, 30) + "\n");
}

TEST_F(BestCheckpoint, SkipsCheckpointsThatAreRecordedAsKeptButMissingOnDisk) {
  fs::remove_all(checkpoint(0, 20));  // removed by hand: the database still says kept
  fs::remove_all(checkpoint(1, 30));
  RunResult r = run("best --db " + shell_quote(db_));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, checkpoint(1, 40) + "\n");
  EXPECT_NE(r.err.find("is gone: " + checkpoint(0, 20) + " is recorded as kept but is not on disk"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("instead: job h1 at step 40 (val_loss 0.6), " + checkpoint(1, 40)),
            std::string::npos)
      << r.err;
}

TEST_F(BestCheckpoint, FailsNamingTheJobAndTheMissingPathWhenNoCheckpointIsLeft) {
  worker_deleted(0, 20);
  for (auto [job, step] :
       std::vector<std::pair<size_t, int64_t>>{{0, 40}, {1, 30}, {1, 40}, {2, 10}}) {
    fs::remove_all(checkpoint(job, step));
  }
  RunResult r = run("best --db " + shell_quote(db_));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("error: the best checkpoint, job h0 at step 20 (val_loss 0.5), is gone: " +
                            checkpoint(0, 20) +
                            " was deleted by the worker's save_top_k retention; "
                            "no other kept checkpoint of a finished job is on disk\n",
                        0),
            0u)
      << r.err;
  EXPECT_NE(r.err.find("hint: raise save_top_k"), std::string::npos) << r.err;
}

TEST_F(BestCheckpoint, LeaderboardShowsNoCheckpointForADeletedOne) {
  worker_deleted(0, 20);
  RunResult r = run("leaderboard --db " + shell_quote(db_) + " --format json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["job"], "h0");
  EXPECT_TRUE(rows[0]["checkpoint"].is_null()) << rows[0].dump();
  EXPECT_EQ(rows[1]["checkpoint"], checkpoint(1, 30));
  RunResult table = run("leaderboard --db " + shell_quote(db_));
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("no checkpoint: 1 job(s) kept none at their best step"),
            std::string::npos)
      << table.out;
}

TEST_F(BestCheckpoint, UnknownMetricIsAnErrorListingTheSweepsMetrics) {
  auto store = Store::open(db_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->add_eval(ids_[0], 1, 20, {{"val_loss", 0.5}, {"val_exact", 0.25}}).ok());
  store->reset();
  for (const char* cmd : {"leaderboard", "best"}) {
    RunResult r = run(std::string(cmd) + " r_alpha --metric val_acc --db " + shell_quote(db_));
    EXPECT_EQ(r.exit_code, 1) << cmd << ": " << r.out;
    EXPECT_EQ(r.out, "") << cmd;
    EXPECT_NE(r.err.find("error: --metric 'val_acc': sweep 'r_alpha' has no evaluation of it (its "
                         "eval metrics: val_exact, val_loss)"),
              std::string::npos)
        << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("hint: pass --metric with one of: val_exact, val_loss"), std::string::npos)
        << cmd << ": " << r.err;
  }
  RunResult known = run("leaderboard --metric val_exact --format json --db " + shell_quote(db_));
  ASSERT_EQ(known.exit_code, 0) << known.err;
  EXPECT_EQ(nlohmann::json::parse(known.out).size(), 1u);
}

}  // namespace
}  // namespace sweep
