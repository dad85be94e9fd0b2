// The leaderboard ranks a job by its best evaluation after step 0 (step 0 is the base model) and
// carries the base model's score, the gain over it and the learning check's verdict; the view and
// Store::leaderboard agree.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include "tests/db/store_test_util.h"

namespace sweep {
namespace {

using testing::add_sweep;
using testing::make_jobs;
using testing::open_ok;
using testing::TempDir;

// Job 0 learns (val_loss 2.0 -> 1.2), job 1 gets worse (2.0 -> 2.5) but its step 0 is the best
// value it ever had, job 2 has only its step-0 evaluation, job 3 stays at its base and failed
// its learning check.
class Gain : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("sweep.db");
    store_ = open_ok(path_);
    sweep_ = add_sweep(*store_);
    ASSERT_TRUE(store_->upsert_jobs(sweep_, make_jobs(4)).ok());
    auto jobs = store_->list_jobs(sweep_);
    ASSERT_TRUE(jobs.ok());
    for (const JobRecord& j : *jobs) ids_.push_back(j.id);
    for (int64_t id : ids_) {
      auto started = store_->start_attempt(id, 1, "h", "cpu", "d");
      ASSERT_TRUE(started.ok()) << started.error().to_string();
    }
    eval(0, 0, 2.0);
    eval(0, 10, 1.5);
    eval(0, 20, 1.2);
    eval(1, 0, 2.0);
    eval(1, 10, 2.5);
    eval(2, 0, 2.0);
    eval(3, 0, 1.9);
    eval(3, 10, 1.9);
    for (int64_t id : ids_)
      ASSERT_TRUE(store_->finish_attempt(id, JobState::kSucceeded, 0, "").ok());
    // The learning_checks rows the worker's check leads to, written with a plain connection.
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
    const std::string sql =
        "INSERT INTO learning_checks (job_id, step, passed, lora_b_norm, lora_grad_norm, "
        "loss_first, loss_last, reason, checked_at) VALUES (" +
        std::to_string(ids_[3]) + ", 2, 0, 0.0, 0.0, 1.9, 1.9, 'LoRA B is still zero', 0), (" +
        std::to_string(ids_[0]) + ", 2, 1, 0.05, 0.3, 2.0, 1.6, '', 0)";
    ASSERT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(raw);
    sqlite3_close(raw);
  }
  void eval(int job, int64_t step, double loss) {
    ASSERT_TRUE(store_->add_eval(ids_[job], 1, step, {{"val_loss", loss}}).ok());
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
  int64_t sweep_ = 0;
  std::vector<int64_t> ids_;
};

TEST_F(Gain, StepZeroIsNeverAJobsBestAndEachRowCarriesItsBaseAndGain) {
  auto rows = store_->leaderboard(sweep_, "val_loss", /*maximize=*/false);
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  ASSERT_EQ(rows->size(), 3u);  // job 2 has no evaluation after step 0
  const LeaderRow& best = (*rows)[0];
  EXPECT_EQ(best.job_id, ids_[0]);
  EXPECT_EQ(best.best_step, 20);
  EXPECT_EQ(best.base_objective, 2.0);
  EXPECT_NEAR(*best.gain, 0.8, 1e-12);
  EXPECT_FALSE(best.not_learning);
  EXPECT_EQ((*rows)[1].job_id, ids_[3]);
  EXPECT_EQ((*rows)[1].gain, 0.0);
  EXPECT_TRUE((*rows)[1].not_learning);
  // Job 1's best is its step-10 value, not the better base at step 0.
  EXPECT_EQ((*rows)[2].job_id, ids_[1]);
  EXPECT_EQ((*rows)[2].objective, 2.5);
  EXPECT_EQ((*rows)[2].best_step, 10);
  EXPECT_NEAR(*(*rows)[2].gain, -0.5, 1e-12);
}

TEST_F(Gain, MaximizedGainIsObjectiveMinusBase) {
  auto rows = store_->leaderboard(sweep_, "val_loss", /*maximize=*/true);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0].job_id, ids_[1]);
  EXPECT_NEAR(*(*rows)[0].gain, 0.5, 1e-12);
}

TEST_F(Gain, TheViewAgreesWithTheStore) {
  auto view = store_->query_readonly(
      "SELECT job_id, objective, best_step, base_objective, gain, not_learning FROM leaderboard "
      "ORDER BY rank, job_id");
  ASSERT_TRUE(view.ok()) << view.error().to_string();
  auto rows = *store_->leaderboard(sweep_, "val_loss", false);
  ASSERT_EQ(view->rows.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(std::stoll(*view->rows[i][0]), rows[i].job_id);
    EXPECT_DOUBLE_EQ(std::stod(*view->rows[i][1]), *rows[i].objective);
    EXPECT_EQ(std::stoll(*view->rows[i][2]), rows[i].best_step);
    EXPECT_DOUBLE_EQ(std::stod(*view->rows[i][3]), *rows[i].base_objective);
    EXPECT_NEAR(std::stod(*view->rows[i][4]), *rows[i].gain, 1e-12);
    EXPECT_EQ(*view->rows[i][5] == "1", rows[i].not_learning);
  }
}

TEST_F(Gain, LearningChecksAreReadWithTheirNumbers) {
  auto checks = store_->learning_checks(sweep_);
  ASSERT_TRUE(checks.ok()) << checks.error().to_string();
  ASSERT_EQ(checks->size(), 2u);
  const LearningCheckRow& failed = checks->at(ids_[3]);
  EXPECT_FALSE(failed.passed);
  EXPECT_EQ(failed.step, 2);
  EXPECT_EQ(failed.lora_b_norm, 0.0);
  EXPECT_EQ(failed.loss_last, 1.9);
  EXPECT_EQ(failed.reason, "LoRA B is still zero");
  EXPECT_TRUE(checks->at(ids_[0]).passed);
}

TEST_F(Gain, BestObjectivesSkipStepZero) {
  auto best = store_->best_objectives(sweep_, "val_loss", false);
  ASSERT_TRUE(best.ok());
  EXPECT_EQ(best->count(ids_[2]), 0u);
  EXPECT_EQ(best->at(ids_[1]), 2.5);
}

}  // namespace
}  // namespace sweep
