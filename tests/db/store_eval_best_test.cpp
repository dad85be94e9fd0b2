// Schema versions 6 and 7: eval_best (each job's best eval per metric, kept up to date by triggers
// while eval rows are ingested), job_progress, job_counts, sweep_progress and eval_counts agree
// with what a full scan of the rows computes, after random sequences of evals (step 0, replaced
// rows, ties, NaN) in both directions; a version-5 database is back-filled on open and its
// leaderboard does not change.
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "db/schema.h"
#include "db/store.h"
#include "tests/db/store_test_util.h"

namespace sweep {
namespace {

using testing::TempDir;

// What eval_best should hold for one (job, metric), computed from every row the way the
// version-5 leaderboard did (MIN/MAX over the steps after 0, NULL values ignored, the first step
// that reached the best, the step-0 value).
struct Expected {
  bool trained = false;
  std::optional<double> min_value, max_value, base;
  std::optional<int64_t> min_step, max_step;
};

using Rows = std::map<std::tuple<int64_t, std::string, int64_t>, std::optional<double>>;

std::map<std::pair<int64_t, std::string>, Expected> full_scan(const Rows& rows) {
  std::map<std::pair<int64_t, std::string>, Expected> out;
  for (const auto& [key, value] : rows) {
    const auto& [job, name, step] = key;
    Expected& e = out[{job, name}];
    if (step == 0) {
      e.base = value;
      continue;
    }
    e.trained = true;
    if (!value) continue;
    // Rows come in step order, so the first step that reaches a value keeps it.
    if (!e.min_value || *value < *e.min_value) {
      e.min_value = value;
      e.min_step = step;
    }
    if (!e.max_value || *value > *e.max_value) {
      e.max_value = value;
      e.max_step = step;
    }
  }
  return out;
}

std::optional<double> cell_real(const std::optional<std::string>& cell) {
  if (!cell) return std::nullopt;
  return std::stod(*cell);
}

std::optional<int64_t> cell_int(const std::optional<std::string>& cell) {
  if (!cell) return std::nullopt;
  return std::stoll(*cell);
}

void expect_eval_best_matches(Store& store, const Rows& rows, const std::string& context) {
  auto expected = full_scan(rows);
  auto got = store.query_readonly(
      "SELECT job_id, name, trained, min_value, min_step, max_value, max_step, base_value "
      "FROM eval_best ORDER BY job_id, name");
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  ASSERT_EQ(got->rows.size(), expected.size()) << context;
  size_t i = 0;
  for (const auto& [key, e] : expected) {
    const auto& row = got->rows[i++];
    const std::string where = context + ", job " + std::to_string(key.first) + " " + key.second;
    EXPECT_EQ(std::stoll(*row[0]), key.first) << where;
    EXPECT_EQ(*row[1], key.second) << where;
    EXPECT_EQ(*row[2] == "1", e.trained) << where;
    EXPECT_EQ(cell_real(row[3]), e.min_value) << where;
    EXPECT_EQ(cell_int(row[4]), e.min_step) << where;
    EXPECT_EQ(cell_real(row[5]), e.max_value) << where;
    EXPECT_EQ(cell_int(row[6]), e.max_step) << where;
    EXPECT_EQ(cell_real(row[7]), e.base) << where;
  }
}

// The version-5 leaderboard view's SQL under another name, as a TEMP view of `db`.
std::string version_5_view(const std::string& name) {
  const std::string v5 = schema_migrations().at(4).sql;
  const std::string head = "CREATE VIEW leaderboard AS";
  std::string view = v5.substr(v5.find(head));
  return "CREATE TEMP VIEW " + name + " AS" + view.substr(head.size());
}

// Every row of `sql` as text, one string per row.
std::vector<std::string> all_rows(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::vector<std::string> out;
  while (stmt && sqlite3_step(stmt) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      const unsigned char* text = sqlite3_column_text(stmt, c);
      row += std::string(text ? reinterpret_cast<const char*>(text) : "NULL") + "|";
    }
    out.push_back(row);
  }
  sqlite3_finalize(stmt);
  return out;
}

// The leaderboard view of the database at `path` equals the version-5 view over the same rows.
void expect_view_unchanged(const std::string& path, const std::string& context) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, version_5_view("leaderboard_v5").c_str(), nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  const char* order = " ORDER BY sweep_id, rank, job_id";
  auto now = all_rows(db, std::string("SELECT * FROM leaderboard") + order);
  auto before = all_rows(db, std::string("SELECT * FROM leaderboard_v5") + order);
  EXPECT_FALSE(now.empty()) << context;
  EXPECT_EQ(now, before) << context;
  sqlite3_close(db);
}

// Store::leaderboard_summary counts the rows of the whole leaderboard and those with a gain.
void expect_summary_matches_board(Store& store, int64_t sweep_id, bool maximize,
                                  const std::string& context) {
  auto summary = store.leaderboard_summary(sweep_id, "val_loss", maximize);
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  auto board = store.leaderboard(sweep_id, "val_loss", maximize);
  ASSERT_TRUE(board.ok());
  int beat = 0;
  for (const LeaderRow& r : *board) beat += r.gain && *r.gain > 0 ? 1 : 0;
  EXPECT_EQ(summary->ranked, static_cast<int>(board->size())) << context;
  EXPECT_EQ(summary->beat_base, beat) << context;
}

// A database at `path` with sweeps "a" (id 1) and "b" (id 2) of `jobs_a` and `jobs_b` jobs.
std::unique_ptr<Store> open_two_sweeps(const std::string& path, int jobs_a, int jobs_b) {
  auto store = testing::open_ok(path);
  EXPECT_TRUE(store);
  if (!store) return store;
  EXPECT_EQ(testing::add_sweep(*store, "a"), 1);
  EXPECT_EQ(testing::add_sweep(*store, "b"), 2);
  EXPECT_TRUE(store->upsert_jobs(1, testing::make_jobs(jobs_a)).ok());
  EXPECT_TRUE(store->upsert_jobs(2, testing::make_jobs(jobs_b)).ok());
  return store;
}

// Deletes jobs behind the store's back (the store has no delete), foreign-key cascades included.
void delete_jobs(const std::string& path, const std::string& where) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, ("PRAGMA foreign_keys=ON; DELETE FROM jobs WHERE " + where).c_str(),
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
}

// Store::leaderboard agrees with the full scan: the ranked states, best first, ties by job id.
void expect_leaderboard_matches(Store& store, int64_t sweep_id, const Rows& rows,
                                const std::map<int64_t, std::string>& states, bool maximize,
                                const std::string& context) {
  std::vector<std::tuple<double, int64_t, int64_t>> expected;  // (key, job, step)
  for (const auto& [key, e] : full_scan(rows)) {
    if (key.second != "val_loss" || !e.trained) continue;
    const std::string& state = states.at(key.first);
    if (state != "succeeded" && state != "pruned" && state != "running") continue;
    auto value = maximize ? e.max_value : e.min_value;
    if (!value) continue;
    expected.emplace_back(maximize ? -*value : *value, key.first,
                          maximize ? *e.max_step : *e.min_step);
  }
  std::sort(expected.begin(), expected.end());
  for (int limit : {0, 1, 3}) {
    auto board = store.leaderboard(sweep_id, "val_loss", maximize, limit);
    ASSERT_TRUE(board.ok()) << board.error().to_string();
    const size_t n = limit > 0 ? std::min<size_t>(expected.size(), limit) : expected.size();
    ASSERT_EQ(board->size(), n) << context << ", limit " << limit;
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(board->at(i).job_id, std::get<1>(expected[i])) << context << ", rank " << i;
      EXPECT_EQ(board->at(i).best_step, std::get<2>(expected[i])) << context << ", rank " << i;
    }
  }
  ASSERT_NO_FATAL_FAILURE(expect_summary_matches_board(store, sweep_id, maximize, context));
}

TEST(EvalBest, EqualsAFullScanAfterRandomIngestionInBothModes) {
  TempDir dir;
  const std::string path = dir.file("sweep.db");
  auto store = testing::open_ok(path);
  ASSERT_TRUE(store);
  ASSERT_EQ(store->schema_version(), latest_schema_version());
  std::mt19937 rng(20261205);
  for (const std::string mode : {"min", "max"}) {
    const int64_t sweep_id = testing::add_sweep(*store, "s_" + mode, mode);
    ASSERT_TRUE(store->upsert_jobs(sweep_id, testing::make_jobs(8)).ok());
    auto jobs = store->list_jobs(sweep_id);
    ASSERT_TRUE(jobs.ok());
    std::map<int64_t, std::string> states;
    const char* kStates[] = {"succeeded", "running", "pruned", "failed"};
    for (size_t i = 0; i < jobs->size(); ++i) {
      const int64_t id = jobs->at(i).id;
      ASSERT_TRUE(store->start_attempt(id, 1, "h", "cpu", "/r").ok());
      states[id] = kStates[i % 4];
      if (states[id] != "running") {
        ASSERT_TRUE(store->finish_attempt(id, *parse_job_state(states[id]), 0, "").ok());
      }
    }
    Rows rows;
    // Few steps and few values: rows are replaced (the best one included), values tie, and a
    // NaN (stored as NULL) sometimes replaces the best.
    const double kValues[] = {0.5, 1.0, 1.0, 1.5, 2.0, std::numeric_limits<double>::quiet_NaN()};
    for (int round = 0; round < 30; ++round) {
      ASSERT_TRUE(store
                      ->transaction([&]() -> Status {
                        for (int k = 0; k < 20; ++k) {
                          const int64_t job = jobs->at(rng() % jobs->size()).id;
                          const int64_t step = static_cast<int64_t>(rng() % 5) * 10;
                          std::map<std::string, double> values;
                          for (const char* name : {"val_loss", "val_acc"}) {
                            if (rng() % 4 == 0) continue;
                            const double v = kValues[rng() % 6];
                            values[name] = v;
                            rows[{job, name, step}] =
                                std::isnan(v) ? std::nullopt : std::optional<double>(v);
                          }
                          SWEEP_RETURN_IF_ERROR(store->add_eval(job, 1, step, values));
                        }
                        return ok_status();
                      })
                      .ok());
      const std::string context = mode + " round " + std::to_string(round);
      ASSERT_NO_FATAL_FAILURE(
          expect_leaderboard_matches(*store, sweep_id, rows, states, mode == "max", context));
      ASSERT_NO_FATAL_FAILURE(expect_leaderboard_matches(*store, sweep_id, rows, states,
                                                         mode != "max", context + " reversed"));
    }
  }
  // Both sweeps' rows, every metric, both directions, and the view.
  Rows all;
  auto evals = store->query_readonly("SELECT job_id, name, step, value FROM eval_metrics");
  ASSERT_TRUE(evals.ok());
  for (const auto& row : evals->rows) {
    all[{std::stoll(*row[0]), *row[1], std::stoll(*row[2])}] = cell_real(row[3]);
  }
  ASSERT_NO_FATAL_FAILURE(expect_eval_best_matches(*store, all, "after 60 batches"));
  expect_view_unchanged(path, "after 60 batches");
}

TEST(EvalBest, ReplacingTheBestRowRecomputesIt) {
  auto store = testing::open_ok(":memory:");
  ASSERT_TRUE(store);
  const int64_t sweep_id = testing::add_sweep(*store);
  ASSERT_TRUE(store->upsert_jobs(sweep_id, testing::make_jobs(1)).ok());
  const int64_t job = store->list_jobs(sweep_id)->at(0).id;
  ASSERT_TRUE(store->start_attempt(job, 1, "h", "cpu", "/r").ok());
  ASSERT_TRUE(store->add_eval(job, 1, 0, {{"val_loss", 3.0}}).ok());
  ASSERT_TRUE(store->add_eval(job, 1, 10, {{"val_loss", 1.0}}).ok());
  ASSERT_TRUE(store->add_eval(job, 1, 20, {{"val_loss", 2.0}}).ok());
  auto best = [&](bool maximize) {
    auto board = store->leaderboard(sweep_id, "val_loss", maximize);
    EXPECT_TRUE(board.ok() && board->size() == 1u);
    return std::make_pair(*board->at(0).objective, board->at(0).best_step);
  };
  EXPECT_EQ(best(false), std::make_pair(1.0, int64_t{10}));
  EXPECT_EQ(best(true), std::make_pair(2.0, int64_t{20}));
  // A second attempt re-evaluates step 10 worse: the best moves to step 20 (min) and 10 (max).
  ASSERT_TRUE(store->add_eval(job, 2, 10, {{"val_loss", 2.5}}).ok());
  EXPECT_EQ(best(false), std::make_pair(2.0, int64_t{20}));
  EXPECT_EQ(best(true), std::make_pair(2.5, int64_t{10}));
  // A tie at an earlier step takes the step; step 0 is only the base.
  ASSERT_TRUE(store->add_eval(job, 2, 5, {{"val_loss", 2.0}}).ok());
  ASSERT_TRUE(store->add_eval(job, 2, 0, {{"val_loss", 0.1}}).ok());
  EXPECT_EQ(best(false), std::make_pair(2.0, int64_t{5}));
  auto board = store->leaderboard(sweep_id, "val_loss", false);
  ASSERT_TRUE(board.ok());
  EXPECT_EQ(board->at(0).base_objective, 0.1);
}

TEST(JobProgress, ComputeUsedEqualsTheLargestStepAndTokensPerJob) {
  auto store = testing::open_ok(":memory:");
  ASSERT_TRUE(store);
  const int64_t sweep_id = testing::add_sweep(*store);
  ASSERT_TRUE(store->upsert_jobs(sweep_id, testing::make_jobs(3)).ok());
  auto jobs = *store->list_jobs(sweep_id);
  ASSERT_TRUE(store->add_metrics(jobs[0].id, 1, 10, {{"train_loss", 1.0}}, {80, 640}).ok());
  ASSERT_TRUE(store->add_metrics(jobs[0].id, 1, 20, {{"train_loss", 0.9}}, {160, 1280}).ok());
  // Re-ingesting an earlier step (a retry from a checkpoint) lowers nothing.
  ASSERT_TRUE(store->add_metrics(jobs[0].id, 2, 10, {{"train_loss", 1.1}}, {80, 640}).ok());
  ASSERT_TRUE(store->add_metrics(jobs[1].id, 1, 5, {{"train_loss", 2.0}}).ok());  // no tokens
  ASSERT_TRUE(store->add_metrics(jobs[2].id, 1, 7, {}).ok());                     // no rows
  auto used = store->compute_used(sweep_id);
  ASSERT_TRUE(used.ok()) << used.error().to_string();
  EXPECT_EQ(used->steps, 25);
  EXPECT_EQ(used->tokens, 1280);
  auto rows = store->query_readonly(
      "SELECT COALESCE(SUM(s), 0), COALESCE(SUM(t), 0) FROM (SELECT MAX(step) AS s, "
      "MAX(tokens_seen) AS t FROM metrics GROUP BY job_id)");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows->rows[0][0], "25");
  EXPECT_EQ(*rows->rows[0][1], "1280");
  ASSERT_TRUE(store->set_state(jobs[0].id, JobState::kPruned).ok());
  auto pruned = store->job_progress(sweep_id, JobState::kPruned);
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  ASSERT_EQ(pruned->size(), 1u);
  EXPECT_EQ(pruned->at(jobs[0].id).steps, 20);
  EXPECT_EQ(pruned->at(jobs[0].id).tokens, 1280);
  EXPECT_EQ(pruned->at(jobs[0].id).max_steps, 0);  // its params name no max_steps
  // A job in the state without any metrics row is there too, at step 0.
  ASSERT_TRUE(store->set_state(jobs[2].id, JobState::kPruned).ok());
  pruned = store->job_progress(sweep_id, JobState::kPruned);
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  ASSERT_EQ(pruned->size(), 2u);
  EXPECT_EQ(pruned->at(jobs[2].id).steps, 0);
}

// job_counts (version 7) follows every insert, change of state and delete of a job: the counts
// equal a GROUP BY over the jobs after random changes in two sweeps.
TEST(JobCounts, EqualACountOfTheJobsAfterRandomChanges) {
  TempDir dir;
  const std::string path = dir.file("sweep.db");
  std::mt19937 rng(7);
  const std::vector<JobState> states = all_job_states();
  auto expect_counts_match = [&](Store& store, const std::string& context) {
    for (int64_t sweep : {1, 2}) {
      auto counts = store.count_by_state(sweep);
      ASSERT_TRUE(counts.ok()) << counts.error().to_string();
      auto rows = store.query_readonly("SELECT state, COUNT(*) FROM jobs WHERE sweep_id = " +
                                       std::to_string(sweep) + " GROUP BY state");
      ASSERT_TRUE(rows.ok());
      std::map<JobState, int> expected;
      for (JobState st : states) expected[st] = 0;
      for (const auto& row : rows->rows) expected[*parse_job_state(*row[0])] = std::stoi(*row[1]);
      EXPECT_EQ(*counts, expected) << context << ", sweep " << sweep;
    }
  };
  {
    auto store = open_two_sweeps(path, 20, 5);
    ASSERT_TRUE(store);
    ASSERT_NO_FATAL_FAILURE(expect_counts_match(*store, "new jobs"));
    auto jobs = *store->list_jobs(1);
    for (int i = 0; i < 60; ++i) {
      const JobRecord& job = jobs[rng() % jobs.size()];
      ASSERT_TRUE(store->set_state(job.id, states[rng() % states.size()]).ok());
    }
    ASSERT_TRUE(store->start_attempt(jobs[0].id, 1, "host", "cpu", "/r").ok());
    ASSERT_TRUE(store->finish_attempt(jobs[0].id, JobState::kSucceeded, 0, "").ok());
    ASSERT_NO_FATAL_FAILURE(expect_counts_match(*store, "after state changes"));
    // Evaluations, so that deleting jobs below also takes eval_best rows (and eval_counts) along.
    for (const JobRecord& job : jobs) {
      ASSERT_TRUE(store->add_eval(job.id, 1, 0, {{"val_loss", 2.0}}).ok());
      ASSERT_TRUE(store->add_eval(job.id, 1, 10, {{"val_loss", 1.0 + 0.1 * (rng() % 20)}}).ok());
    }
  }
  ASSERT_NO_FATAL_FAILURE(delete_jobs(path, "id % 3 = 0"));
  auto store = testing::open_ok(path);
  ASSERT_TRUE(store);
  ASSERT_NO_FATAL_FAILURE(expect_counts_match(*store, "after deletes"));
  for (bool maximize : {false, true})
    ASSERT_NO_FATAL_FAILURE(expect_summary_matches_board(*store, 1, maximize, "after deletes"));
}

// sweep_progress (version 7) follows job_progress through new rows, larger steps, re-ingested
// earlier steps and deleted jobs: compute_used equals the sum over job_progress.
TEST(SweepProgress, ComputeUsedEqualsTheSumOverJobsAfterIngestionAndDeletes) {
  TempDir dir;
  const std::string path = dir.file("sweep.db");
  auto expect_sum = [&](Store& store, const std::string& context) {
    for (int64_t sweep : {1, 2}) {
      auto used = store.compute_used(sweep);
      ASSERT_TRUE(used.ok()) << used.error().to_string();
      auto rows = store.query_readonly(
          "SELECT COALESCE(SUM(step), 0), COALESCE(SUM(tokens_seen), 0) FROM job_progress "
          "WHERE sweep_id = " +
          std::to_string(sweep));
      ASSERT_TRUE(rows.ok());
      EXPECT_EQ(used->steps, std::stoll(*rows->rows[0][0])) << context << ", sweep " << sweep;
      EXPECT_EQ(used->tokens, std::stoll(*rows->rows[0][1])) << context << ", sweep " << sweep;
    }
  };
  {
    auto store = open_two_sweeps(path, 6, 3);
    ASSERT_TRUE(store);
    std::mt19937 rng(11);
    for (int i = 0; i < 200; ++i) {
      const int64_t job = 1 + static_cast<int64_t>(rng() % 9);
      const int64_t step = 1 + static_cast<int64_t>(rng() % 50);
      TrainingSeen seen;
      if (rng() % 4 != 0) seen = {step * 8, step * 640};  // some steps carry no tokens
      ASSERT_TRUE(store->add_metrics(job, 1, step, {{"train_loss", 1.0}}, seen).ok());
    }
    ASSERT_NO_FATAL_FAILURE(expect_sum(*store, "after ingestion"));
  }
  ASSERT_NO_FATAL_FAILURE(delete_jobs(path, "id IN (2, 8)"));
  auto store = testing::open_ok(path);
  ASSERT_TRUE(store);
  ASSERT_NO_FATAL_FAILURE(expect_sum(*store, "after deletes"));
}

// A database as sweep wrote it at schema version 5: two sweeps (min and max), jobs in every
// ranked and unranked state, evals with step 0, ties, a replaced best and NULL (NaN) values.
void write_version_5_database(const std::string& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string sql;
  for (int v = 0; v < 5; ++v) sql += schema_migrations().at(v).sql;
  sql +=
      "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL);"
      "INSERT INTO schema_version VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0);"
      "INSERT INTO sweeps (id, name, objective_metric, objective_mode, created_at, updated_at) "
      "VALUES (1, 'lo', 'val_loss', 'min', 0, 0), (2, 'hi', 'val_acc', 'max', 0, 0);"
      "INSERT INTO jobs (id, sweep_id, hash, grid_index, params, state, created_at) VALUES "
      "(1, 1, 'a', 0, '{\"lora_r\":4}', 'succeeded', 0),"
      "(2, 1, 'b', 1, '{\"max_steps\":40}', 'running', 0),"
      "(3, 1, 'c', 2, '{\"max_steps\":60}', 'pruned', 0), (4, 1, 'd', 3, '{}', 'failed', 0),"
      "(5, 1, 'e', 4, '{}', 'succeeded', 0), (6, 2, 'f', 0, '{}', 'succeeded', 0),"
      "(7, 2, 'g', 1, '{}', 'succeeded', 0), (8, 2, 'h', 2, '{}', 'pending', 0);"
      "INSERT INTO eval_metrics (job_id, name, step, attempt, value) VALUES "
      "(1, 'val_loss', 0, 1, 2.0), (1, 'val_loss', 10, 1, 1.5), (1, 'val_loss', 20, 1, 1.5),"
      "(1, 'val_acc', 10, 1, 0.3),"
      "(2, 'val_loss', 0, 1, 2.0), (2, 'val_loss', 10, 1, 1.2),"
      "(3, 'val_loss', 10, 1, NULL), (3, 'val_loss', 20, 1, 1.9),"
      "(4, 'val_loss', 10, 1, 0.1),"
      "(5, 'val_loss', 0, 1, 2.0), (5, 'val_loss', 10, 1, NULL),"
      "(6, 'val_acc', 0, 1, 0.2), (6, 'val_acc', 10, 1, 0.6), (6, 'val_acc', 20, 1, 0.6),"
      "(7, 'val_acc', 0, 1, 0.2), (7, 'val_acc', 10, 1, 0.1);"
      "INSERT INTO metrics (job_id, name, step, attempt, value, tokens_seen) VALUES "
      "(1, 'train_loss', 10, 1, 1.0, 640), (1, 'train_loss', 20, 1, 0.9, 1280),"
      "(2, 'train_loss', 10, 1, 1.0, NULL), (6, 'train_loss', 30, 1, 1.0, 99);"
      "INSERT INTO checkpoints (job_id, step, path, kept, created_at) VALUES "
      "(1, 10, '/r/a/step-10', 1, 0), (6, 10, '/r/f/step-10', 1, 0);"
      "INSERT INTO learning_checks (job_id, step, passed, checked_at) VALUES (2, 5, 0, 0);";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
}

TEST(EvalBest, AVersion5DatabaseIsBackFilledAndRanksAsBefore) {
  TempDir dir;
  const std::string path = dir.file("v5.db");
  ASSERT_NO_FATAL_FAILURE(write_version_5_database(path));
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  const auto view_before =
      all_rows(raw, "SELECT * FROM leaderboard ORDER BY sweep_id, rank, job_id");
  sqlite3_close(raw);
  ASSERT_EQ(view_before.size(), 6u);  // a, b, c and e (NULL objective) of 'lo'; f and g of 'hi'

  std::vector<std::vector<LeaderRow>> boards_before;
  Store::ComputeUsed used_before;
  {
    // Read-only, the database stays at version 5 and is ranked by the full scan.
    auto old = Store::open_readonly(path);
    ASSERT_TRUE(old.ok()) << old.error().to_string();
    EXPECT_EQ((*old)->schema_version(), 5);
    for (auto [sweep, metric, maximize] :
         {std::make_tuple(1, "val_loss", false), std::make_tuple(2, "val_acc", true),
          std::make_tuple(1, "val_acc", true)}) {
      auto board = (*old)->leaderboard(sweep, metric, maximize);
      ASSERT_TRUE(board.ok()) << board.error().to_string();
      boards_before.push_back(*board);
    }
    used_before = *(*old)->compute_used(1);
    // Without job_progress (version 6) the progress of a state's jobs comes from the metrics.
    auto running = (*old)->job_progress(1, JobState::kRunning);
    ASSERT_TRUE(running.ok()) << running.error().to_string();
    EXPECT_EQ(running->at(2).steps, 10);
    EXPECT_EQ(running->at(2).max_steps, 40);
  }
  auto store = Store::open(path);
  ASSERT_TRUE(store.ok()) << store.error().to_string();
  EXPECT_EQ((*store)->schema_version(), latest_schema_version());
  // job_progress is back-filled with max_steps (version 7); a job's first progress row after the
  // migration reads its max_steps from its params.
  auto running = (*store)->job_progress(1, JobState::kRunning);
  ASSERT_TRUE(running.ok()) << running.error().to_string();
  EXPECT_EQ(running->at(2).steps, 10);
  EXPECT_EQ(running->at(2).max_steps, 40);
  auto max_steps = (*store)->query_readonly("SELECT max_steps FROM job_progress WHERE job_id = 2");
  ASSERT_TRUE(max_steps.ok());
  EXPECT_EQ(*max_steps->rows.at(0).at(0), "40");
  size_t i = 0;
  for (auto [sweep, metric, maximize] :
       {std::make_tuple(1, "val_loss", false), std::make_tuple(2, "val_acc", true),
        std::make_tuple(1, "val_acc", true)}) {
    auto board = (*store)->leaderboard(sweep, metric, maximize);
    ASSERT_TRUE(board.ok()) << board.error().to_string();
    const auto& before = boards_before[i++];
    ASSERT_EQ(board->size(), before.size()) << metric;
    for (size_t r = 0; r < before.size(); ++r) {
      EXPECT_EQ(board->at(r).job_id, before[r].job_id) << metric << " rank " << r;
      EXPECT_EQ(board->at(r).objective, before[r].objective) << metric << " rank " << r;
      EXPECT_EQ(board->at(r).best_step, before[r].best_step) << metric << " rank " << r;
      EXPECT_EQ(board->at(r).base_objective, before[r].base_objective) << metric;
      EXPECT_EQ(board->at(r).gain, before[r].gain) << metric << " rank " << r;
      EXPECT_EQ(board->at(r).checkpoint_path, before[r].checkpoint_path) << metric;
      EXPECT_EQ(board->at(r).not_learning, before[r].not_learning) << metric;
      EXPECT_EQ(board->at(r).metrics, before[r].metrics) << metric << " rank " << r;
    }
  }
  // Job 1 ties 1.5 at steps 10 and 20: the first step; job 3's NULL at step 10 is skipped.
  EXPECT_EQ(boards_before[0].at(1).job_id, 1);
  EXPECT_EQ(boards_before[0].at(1).best_step, 10);
  auto used = (*store)->compute_used(1);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(used->steps, used_before.steps);
  EXPECT_EQ(used->tokens, used_before.tokens);
  EXPECT_EQ(used->steps, 30);
  EXPECT_EQ(used->tokens, 1280);
  ASSERT_TRUE((*store)->add_metrics(3, 1, 20, {{"train_loss", 1.0}}).ok());
  auto pruned = (*store)->job_progress(1, JobState::kPruned);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->at(3).steps, 20);
  EXPECT_EQ(pruned->at(3).max_steps, 60);
  max_steps = (*store)->query_readonly("SELECT max_steps FROM job_progress WHERE job_id = 3");
  ASSERT_TRUE(max_steps.ok());
  EXPECT_EQ(*max_steps->rows.at(0).at(0), "60");

  Rows rows;
  auto evals = (*store)->query_readonly("SELECT job_id, name, step, value FROM eval_metrics");
  ASSERT_TRUE(evals.ok());
  for (const auto& row : evals->rows) {
    rows[{std::stoll(*row[0]), *row[1], std::stoll(*row[2])}] = cell_real(row[3]);
  }
  ASSERT_NO_FATAL_FAILURE(expect_eval_best_matches(**store, rows, "back-filled"));
  // Evals ingested after the migration keep it up to date.
  ASSERT_TRUE((*store)->add_eval(5, 1, 20, {{"val_loss", 0.5}}).ok());
  rows[{5, "val_loss", 20}] = 0.5;
  ASSERT_NO_FATAL_FAILURE(expect_eval_best_matches(**store, rows, "after a new eval"));
  store->reset();

  raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  auto view_after = all_rows(raw, "SELECT * FROM leaderboard ORDER BY sweep_id, rank, job_id");
  sqlite3_close(raw);
  ASSERT_EQ(view_after.size(), view_before.size());
  expect_view_unchanged(path, "migrated from version 5");
}

}  // namespace
}  // namespace sweep
