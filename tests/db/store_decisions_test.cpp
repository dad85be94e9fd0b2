// Schema version 3: the tokens columns of metrics and evals (back-filled from a version-2
// database), early-stopping decisions written once, the compute a sweep has used, and pruned
// jobs on the leaderboard.
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "db/schema.h"
#include "db/store.h"

namespace sweep {
namespace {

namespace fs = std::filesystem;

// A database file as sweep version 2 wrote it: one sweep, one job with two logged steps and an
// evaluation at step 20.
std::string write_version_2_database() {
  std::string path =
      (fs::temp_directory_path() / ("sweep-v2-" + std::to_string(::getpid()) + ".db")).string();
  fs::remove(path);
  sqlite3* raw = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  std::string sql = std::string(schema_migrations().at(0).sql) + schema_migrations().at(1).sql +
                    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL);"
                    "INSERT INTO schema_version VALUES (1, 0), (2, 0);"
                    "INSERT INTO sweeps (name, created_at, updated_at) VALUES ('s', 0, 0);"
                    "INSERT INTO jobs (sweep_id, hash, grid_index, params, state, created_at) "
                    "VALUES (1, 'a', 0, '{}', 'succeeded', 0);"
                    "INSERT INTO metrics (job_id, name, step, attempt, value) VALUES "
                    "(1, 'train_loss', 10, 1, 2.0), (1, 'tokens_seen', 10, 1, 640),"
                    "(1, 'samples_seen', 10, 1, 80), (1, 'train_loss', 20, 1, 1.5),"
                    "(1, 'tokens_seen', 20, 1, 1280), (1, 'samples_seen', 20, 1, 160);"
                    "INSERT INTO eval_metrics (job_id, name, step, attempt, value) VALUES "
                    "(1, 'val_loss', 20, 1, 1.25);";
  EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(raw);
  sqlite3_close(raw);
  return path;
}

void remove_database(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
}

TEST(StoreVersion3, AVersion2DatabaseGetsItsTokensBackFilled) {
  std::string path = write_version_2_database();
  {
    // Read-only, the database stays at version 2: no decisions, no tokens, but it still reads.
    auto old = Store::open_readonly(path);
    ASSERT_TRUE(old.ok()) << old.error().to_string();
    EXPECT_EQ((*old)->schema_version(), 2);
    EXPECT_TRUE((*old)->decisions(1)->empty());
    EXPECT_EQ((*old)->compute_used(1)->steps, 20);
    auto board = (*old)->leaderboard(1, "val_loss", false);
    ASSERT_TRUE(board.ok()) << board.error().to_string();
    ASSERT_EQ(board->size(), 1u);
    EXPECT_FALSE(board->at(0).rung);
  }
  auto store = Store::open(path);
  ASSERT_TRUE(store.ok()) << store.error().to_string();
  EXPECT_EQ((*store)->schema_version(), latest_schema_version());
  auto rows = (*store)->query_readonly(
      "SELECT step, samples_seen, tokens_seen FROM metrics WHERE name = 'train_loss' "
      "ORDER BY step");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  ASSERT_EQ(rows->rows.size(), 2u);
  EXPECT_EQ(*rows->rows[1][1], "160");
  EXPECT_EQ(*rows->rows[1][2], "1280");
  auto evals = (*store)->evals_with_tokens(1, "val_loss");
  ASSERT_TRUE(evals.ok()) << evals.error().to_string();
  ASSERT_EQ(evals->size(), 1u);
  EXPECT_EQ(std::get<1>(evals->at(0)), 1280);
  auto used = (*store)->compute_used(1);
  EXPECT_EQ(used->steps, 20);
  EXPECT_EQ(used->tokens, 1280);
  store->reset();
  remove_database(path);
}

class StoreDecisions : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(Store::open(":memory:").value());
    sweep_ = *store_->upsert_sweep("s", "s.yaml", "{}", "val_loss", "min");
    ASSERT_TRUE(store_
                    ->upsert_jobs(sweep_, {{"a", 0, "{\"max_steps\": 100}", 1},
                                           {"b", 1, "{\"max_steps\": 100}", 1}})
                    .ok());
    auto jobs = *store_->list_jobs(sweep_);
    a_ = jobs[0].id;
    b_ = jobs[1].id;
  }

  RungDecision decision(int64_t job, int rung, double value, const std::string& action) {
    RungDecision d;
    d.job_id = job;
    d.rung = rung;
    d.rung_tokens = 1000 << rung;
    d.step = 10 * (rung + 1);
    d.tokens_seen = d.rung_tokens + 7;
    d.metric = "val_loss";
    d.value = value;
    d.compared_to = std::nan("");
    d.rank = 1;
    d.peers = 1;
    d.action = action;
    d.rule = "asha";
    d.decided_at = 100 + rung;
    return d;
  }

  std::unique_ptr<Store> store_;
  int64_t sweep_ = 0, a_ = 0, b_ = 0;
};

TEST_F(StoreDecisions, TheFirstDecisionOfARungStandsAndAllComeBackInOrder) {
  EXPECT_TRUE(*store_->add_decision(decision(b_, 0, 2.0, "continue")));
  EXPECT_TRUE(*store_->add_decision(decision(a_, 0, 3.0, "stop")));
  EXPECT_FALSE(*store_->add_decision(decision(a_, 0, 1.0, "continue")));  // ignored
  EXPECT_TRUE(*store_->add_decision(decision(b_, 1, 1.5, "continue")));
  auto all = *store_->decisions(sweep_);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].job_id, b_);
  EXPECT_EQ(all[1].job_id, a_);
  EXPECT_EQ(all[1].action, "stop");
  EXPECT_DOUBLE_EQ(all[1].value, 3.0);
  EXPECT_TRUE(std::isnan(all[1].compared_to));
  EXPECT_EQ(all[2].rung, 1);
  EXPECT_EQ(all[2].tokens_seen, 2007);
}

// `sweep status` reads only the latest decisions, oldest first, with their jobs' hashes, and
// the count of every decision per action.
TEST_F(StoreDecisions, TheLatestNComeBackInOrderWithHashesAndEveryOneIsCounted) {
  for (int rung = 0; rung < 12; ++rung) {
    ASSERT_TRUE(*store_->add_decision(decision(a_, rung, 1.0 + rung, "continue")));
    ASSERT_TRUE(
        *store_->add_decision(decision(b_, rung, 2.0 + rung, rung < 11 ? "continue" : "stop")));
  }
  auto latest = store_->decisions(sweep_, 5);
  ASSERT_TRUE(latest.ok()) << latest.error().to_string();
  auto all = *store_->decisions(sweep_);
  ASSERT_EQ(all.size(), 24u);
  ASSERT_EQ(latest->size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(latest->at(i).job_id, all[19 + i].job_id) << i;
    EXPECT_EQ(latest->at(i).rung, all[19 + i].rung) << i;
  }
  EXPECT_EQ(latest->back().job_hash, "b");
  EXPECT_EQ(latest->back().action, "stop");
  EXPECT_EQ(all.front().job_hash, "a");
  auto counts = store_->decision_counts(sweep_);
  ASSERT_TRUE(counts.ok()) << counts.error().to_string();
  EXPECT_EQ(*counts, (std::map<std::string, int64_t>{{"continue", 23}, {"stop", 1}}));
}

TEST_F(StoreDecisions, PrunedJobsAreRankedWithTheRungTheyReached) {
  ASSERT_TRUE(store_->add_eval(a_, 1, 10, {{"val_loss", 3.0}}, TrainingSeen{80, 1007}).ok());
  ASSERT_TRUE(store_->add_eval(b_, 1, 10, {{"val_loss", 2.0}}, TrainingSeen{80, 1007}).ok());
  ASSERT_TRUE(store_->add_decision(decision(a_, 0, 3.0, "stop")).ok());
  ASSERT_TRUE(store_->add_decision(decision(b_, 0, 2.0, "continue")).ok());
  ASSERT_TRUE(store_->set_state(a_, JobState::kPruned, "stopped early at rung 0").ok());
  ASSERT_TRUE(store_->set_state(b_, JobState::kSucceeded).ok());
  auto board = *store_->leaderboard(sweep_, "val_loss", false);
  ASSERT_EQ(board.size(), 2u);
  EXPECT_EQ(board[1].job_id, a_);
  EXPECT_EQ(board[1].state, "pruned");
  EXPECT_EQ(board[1].rung, 0);
  auto view = store_->query_readonly("SELECT hash, state, rung FROM leaderboard ORDER BY rank");
  ASSERT_TRUE(view.ok()) << view.error().to_string();
  ASSERT_EQ(view->rows.size(), 2u);
  EXPECT_EQ(*view->rows[1][1], "pruned");
  EXPECT_EQ(*view->rows[1][2], "0");
  EXPECT_TRUE(is_final(JobState::kPruned));
  EXPECT_EQ(parse_job_state("pruned"), JobState::kPruned);
}

TEST_F(StoreDecisions, ComputeUsedAddsEachJobsLatestStepAndTokens) {
  ASSERT_TRUE(store_->add_metrics(a_, 1, 10, {{"train_loss", 1}}, TrainingSeen{80, 500}).ok());
  ASSERT_TRUE(store_->add_metrics(a_, 1, 20, {{"train_loss", 1}}, TrainingSeen{160, 1000}).ok());
  ASSERT_TRUE(store_->add_metrics(b_, 1, 5, {{"train_loss", 1}}, TrainingSeen{40, 300}).ok());
  auto used = *store_->compute_used(sweep_);
  EXPECT_EQ(used.steps, 25);
  EXPECT_EQ(used.tokens, 1300);
}

}  // namespace
}  // namespace sweep
