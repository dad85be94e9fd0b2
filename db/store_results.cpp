// Reading results: leaderboard, evals, curves, and free read-only SQL for `sweep query`.
#include <sqlite3.h>

#include <cctype>
#include <chrono>
#include <sstream>

#include "db/query_guard.h"
#include "db/sqlite.h"
#include "db/store.h"
#include "db/store_internal.h"

namespace sweep {

using store_internal::job_label;

namespace {

// Per job of sweep ?1 in the given states: the best value of eval metric ?2 (max when ?3 is 1)
// after step 0 (step 0 is the base model, never a job's best), the first step that reached it,
// and the job's step-0 value (the base model's score). Served by jobs_by_sweep_state and
// eval_metrics_by_value.
std::string best_per_job_sql(const std::string& state_filter) {
  return "WITH best AS ("
         "  SELECT j.id AS job_id, CASE WHEN ?3 THEN MAX(e.value) ELSE MIN(e.value) END AS "
         "objective"
         "  FROM jobs j JOIN eval_metrics e ON e.job_id = j.id AND e.name = ?2 AND e.step > 0"
         "  WHERE j.sweep_id = ?1 " +
         state_filter +
         "  GROUP BY j.id) "
         "SELECT b.job_id, b.objective,"
         "  (SELECT MIN(e.step) FROM eval_metrics e"
         "   WHERE e.job_id = b.job_id AND e.name = ?2 AND e.step > 0 AND e.value = b.objective)"
         "   AS best_step,"
         "  (SELECT e.value FROM eval_metrics e"
         "   WHERE e.job_id = b.job_id AND e.name = ?2 AND e.step = 0) AS base_objective "
         "FROM best b WHERE b.objective IS NOT NULL";
}

Result<std::map<std::string, double>> values_at_step(Stmt& stmt, int64_t job_id, int64_t step) {
  SWEEP_RETURN_IF_ERROR(stmt.reset());
  SWEEP_RETURN_IF_ERROR(stmt.bind_all(job_id, step));
  std::map<std::string, double> values;
  for (;;) {
    auto row = stmt.step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    if (!stmt.is_null(1)) values[stmt.text(0)] = stmt.real(1);
  }
  return values;
}

Result<std::string> checkpoint_at_step(Stmt& stmt, int64_t job_id, int64_t step) {
  SWEEP_RETURN_IF_ERROR(stmt.reset());
  SWEEP_RETURN_IF_ERROR(stmt.bind_all(job_id, step));
  auto row = stmt.step();
  if (!row.ok()) return row.error();
  return *row ? stmt.text(0) : std::string();
}

bool blank(const std::string& text) {
  for (unsigned char c : text) {
    if (!std::isspace(c) && c != ';') return false;
  }
  return true;
}

Error read_only_refusal(const std::string& why) {
  return make_error(ErrorKind::kUser, "sweep query is read-only: " + why,
                    "use SELECT (or WITH ... SELECT) statements, one at a time");
}

}  // namespace

namespace {

constexpr const char* kRankedStates = "('succeeded', 'pruned', 'running')";

// Version 6: the sweep's jobs in kRankedStates with an eval of ?2 after step 0, from eval_best,
// best first (ties by job id), walked along eval_best_by_min/max so that a LIMIT ?4 reads only
// the top rows. Columns: job_id, hash, params, state, objective, best_step, base_objective.
std::string ranked_from_eval_best(bool maximize, bool limited) {
  const std::string value = maximize ? "b.max_value" : "b.min_value";
  const std::string step = maximize ? "b.max_step" : "b.min_step";
  return "SELECT b.job_id, j.hash, j.params, j.state, " + value + " AS objective, " + step +
         " AS best_step, b.base_value AS base_objective "
         "FROM eval_best b JOIN jobs j ON j.id = b.job_id "
         "WHERE b.sweep_id = ?1 AND b.name = ?2 AND b.trained = 1 AND " +
         value + " IS NOT NULL AND j.state IN " + kRankedStates + " ORDER BY " + value +
         (maximize ? " DESC" : "") + ", b.job_id" + (limited ? " LIMIT ?4" : "");
}

}  // namespace

Result<std::vector<LeaderRow>> Store::leaderboard(int64_t sweep_id, const std::string& metric,
                                                  bool maximize, int limit) {
  std::string what = "ranking jobs of sweep " + std::to_string(sweep_id) + " by " + metric;
  const bool derived = schema_version_ >= store_internal::kDerivedSchema;
  const std::string ranked =
      derived ? ranked_from_eval_best(maximize, limit > 0)
              : "SELECT r.job_id, j.hash, j.params, j.state, r.objective, r.best_step, "
                "r.base_objective FROM (" +
                    best_per_job_sql(std::string("AND j.state IN ") + kRankedStates) +
                    ") r JOIN jobs j ON j.id = r.job_id "
                    "ORDER BY CASE WHEN ?3 THEN -r.objective ELSE r.objective END, r.job_id" +
                    (limit > 0 ? " LIMIT ?4" : "");
  auto stmt = db_->prepare(
      std::string("SELECT r.job_id, r.hash, r.params, r.state, r.objective, r.best_step, ") +
          // A version-2 database opened read-only has no decisions table, one before version 5
          // no learning_checks.
          (schema_version_ >= 3 ? "(SELECT MAX(d.rung) FROM decisions d WHERE d.job_id = r.job_id)"
                                : "NULL") +
          ", r.base_objective, " +
          (schema_version_ >= 5 ? "COALESCE((SELECT 1 - l.passed FROM learning_checks l WHERE "
                                  "l.job_id = r.job_id), 0)"
                                : "0") +
          " FROM (" + ranked + ") r",
      what);
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, sweep_id));
  SWEEP_RETURN_IF_ERROR(stmt->bind(2, metric));
  if (!derived) SWEEP_RETURN_IF_ERROR(stmt->bind(3, maximize ? 1 : 0));
  if (limit > 0) SWEEP_RETURN_IF_ERROR(stmt->bind(4, limit));
  auto metrics =
      db_->prepare("SELECT name, value FROM eval_metrics WHERE job_id = ? AND step = ?", what);
  if (!metrics.ok()) return metrics.error();
  auto checkpoint = db_->prepare(
      "SELECT path FROM checkpoints WHERE job_id = ? AND step = ? AND kept = 1 "
      "ORDER BY id DESC LIMIT 1",
      what);
  if (!checkpoint.ok()) return checkpoint.error();
  std::vector<LeaderRow> rows;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    LeaderRow r;
    r.job_id = stmt->int64(0);
    r.hash = stmt->text(1);
    r.params_json = stmt->text(2);
    r.state = stmt->text(3);
    r.objective = stmt->opt_real(4);
    r.best_step = stmt->int64(5);
    r.rung = stmt->opt_int(6);
    r.base_objective = stmt->opt_real(7);
    if (r.objective && r.base_objective) {
      r.gain = maximize ? *r.objective - *r.base_objective : *r.base_objective - *r.objective;
    }
    r.not_learning = stmt->int64(8) != 0;
    auto values = values_at_step(*metrics, r.job_id, r.best_step);
    if (!values.ok()) return values.error();
    r.metrics = std::move(*values);
    auto path = checkpoint_at_step(*checkpoint, r.job_id, r.best_step);
    if (!path.ok()) return path.error();
    r.checkpoint_path = std::move(*path);
    rows.push_back(std::move(r));
  }
  return rows;
}

Result<Store::RankSummary> Store::leaderboard_summary(int64_t sweep_id, const std::string& metric,
                                                      bool maximize) {
  RankSummary summary;
  if (schema_version_ < store_internal::kDerivedSchema) {
    auto rows = leaderboard(sweep_id, metric, maximize);
    if (!rows.ok()) return rows.error();
    summary.ranked = static_cast<int>(rows->size());
    for (const LeaderRow& r : *rows) summary.beat_base += r.gain && *r.gain > 0 ? 1 : 0;
    return summary;
  }
  const std::string value = maximize ? "b.max_value" : "b.min_value";
  const std::string gain = maximize ? "b.max_value - b.base_value" : "b.base_value - b.min_value";
  // From version 7 one row of eval_counts; version 6 joins the jobs (through the covering
  // jobs_by_sweep_state: the job rows themselves are not read).
  const std::string sql =
      schema_version_ >= store_internal::kStatusIndexSchema
          ? std::string(maximize ? "SELECT ranked_max, beat_max" : "SELECT ranked_min, beat_min") +
                " FROM eval_counts WHERE sweep_id = ?1 AND name = ?2"
          : "SELECT COUNT(*), COALESCE(SUM(" + gain +
                " > 0), 0) FROM jobs j JOIN eval_best b ON b.job_id = j.id AND b.name = ?2 "
                "WHERE j.sweep_id = ?1 AND j.state IN " +
                std::string(kRankedStates) + " AND b.trained = 1 AND " + value + " IS NOT NULL";
  auto stmt = db_->prepare(
      sql, "counting the ranked jobs of sweep " + std::to_string(sweep_id) + " by " + metric);
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(sweep_id, metric));
  auto row = stmt->step();
  if (!row.ok()) return row.error();
  if (*row) {
    summary.ranked = static_cast<int>(stmt->int64(0));
    summary.beat_base = static_cast<int>(stmt->int64(1));
  }
  return summary;
}

Result<std::vector<RankedCheckpoint>> Store::kept_checkpoints(int64_t sweep_id,
                                                              const std::string& metric,
                                                              bool maximize) {
  auto stmt = db_->prepare(
      "SELECT c.job_id, j.hash, c.step, c.path, e.value FROM checkpoints c "
      "JOIN jobs j ON j.id = c.job_id "
      "JOIN eval_metrics e ON e.job_id = c.job_id AND e.step = c.step AND e.name = ?2 "
      "WHERE j.sweep_id = ?1 AND j.state = 'succeeded' AND c.kept = 1 AND e.value IS NOT NULL "
      "ORDER BY CASE WHEN ?3 THEN -e.value ELSE e.value END, c.job_id, c.step, c.id DESC",
      "listing the kept checkpoints of sweep " + std::to_string(sweep_id) + " by " + metric);
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(sweep_id, metric, maximize ? 1 : 0));
  std::vector<RankedCheckpoint> out;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(RankedCheckpoint{stmt->int64(0), stmt->text(1), stmt->int64(2), stmt->text(3),
                                   stmt->real(4)});
  }
  return out;
}

Result<std::map<int64_t, double>> Store::best_objectives(int64_t sweep_id,
                                                         const std::string& metric, bool maximize) {
  const bool derived = schema_version_ >= store_internal::kDerivedSchema;
  const std::string value = maximize ? "max_value" : "min_value";
  auto stmt = db_->prepare(derived ? "SELECT job_id, " + value +
                                         " FROM eval_best WHERE sweep_id = ?1 AND name = ?2 "
                                         "AND trained = 1 AND " +
                                         value + " IS NOT NULL"
                                   : best_per_job_sql(""),
                           "finding the best " + metric + " of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(sweep_id, metric));
  if (!derived) SWEEP_RETURN_IF_ERROR(stmt->bind(3, maximize ? 1 : 0));
  std::map<int64_t, double> best;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    best[stmt->int64(0)] = stmt->real(1);
  }
  return best;
}

Result<std::map<int64_t, LearningCheckRow>> Store::learning_checks(int64_t sweep_id,
                                                                   bool failed_only) {
  std::map<int64_t, LearningCheckRow> checks;
  if (schema_version_ < 5) return checks;
  auto stmt = db_->prepare(
      std::string("SELECT l.job_id, l.step, l.passed, l.lora_b_norm, l.lora_grad_norm, "
                  "l.loss_first, l.loss_last, l.reason FROM learning_checks l "
                  // CROSS JOIN keeps learning_checks outside: the failed ones are read along
                  // their partial index, not by visiting every job of the sweep.
                  "CROSS JOIN jobs j ON j.id = l.job_id WHERE j.sweep_id = ?") +
          (failed_only ? " AND l.passed = 0" : ""),
      "reading the learning checks of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, sweep_id));
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    LearningCheckRow c;
    c.job_id = stmt->int64(0);
    c.step = stmt->int64(1);
    c.passed = stmt->int64(2) != 0;
    c.lora_b_norm = stmt->opt_real(3);
    c.lora_grad_norm = stmt->opt_real(4);
    c.loss_first = stmt->opt_real(5);
    c.loss_last = stmt->opt_real(6);
    c.reason = stmt->text(7);
    checks[c.job_id] = std::move(c);
  }
  return checks;
}

Result<std::vector<EvalRow>> Store::evals(int64_t job_id) {
  auto stmt = db_->prepare(
      "SELECT step, name, value FROM eval_metrics "
      "WHERE job_id = ? ORDER BY step, name",
      "reading the evals of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, job_id));
  std::vector<EvalRow> rows;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    int64_t step = stmt->int64(0);
    if (rows.empty() || rows.back().step != step) rows.push_back(EvalRow{job_id, step, {}});
    if (!stmt->is_null(2)) rows.back().metrics[stmt->text(1)] = stmt->real(2);
  }
  return rows;
}

Result<std::map<std::string, double>> Store::latest_metrics(int64_t job_id) {
  // SQLite takes the bare column `value` from the row holding MAX(step) within each group.
  auto stmt =
      db_->prepare("SELECT name, value, MAX(step) FROM metrics WHERE job_id = ? GROUP BY name",
                   "reading the latest metrics of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, job_id));
  std::map<std::string, double> latest;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    if (!stmt->is_null(1)) latest[stmt->text(0)] = stmt->real(1);
    double step = stmt->real(2);
    if (!latest.count("step") || step > latest["step"]) latest["step"] = step;
  }
  return latest;
}

Result<std::vector<std::pair<int64_t, double>>> Store::metric_curve(int64_t job_id,
                                                                    const std::string& name) {
  auto stmt =
      db_->prepare("SELECT step, value FROM metrics WHERE job_id = ? AND name = ? ORDER BY step",
                   "reading the " + name + " curve of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(job_id, name));
  std::vector<std::pair<int64_t, double>> curve;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    if (!stmt->is_null(1)) curve.emplace_back(stmt->int64(0), stmt->real(1));
  }
  return curve;
}

Result<QueryResult> Store::query_readonly(const std::string& sql) {
  if (blank(sql)) return make_error(ErrorKind::kUser, "sweep query: the SQL text is empty");
  QueryGuard guard(db_->handle());
  std::string tail;
  auto stmt = db_->prepare(sql, "preparing the query", &tail);
  if (!stmt.ok()) {
    if (guard.denied()) {
      return read_only_refusal(
          (guard.refused().empty() ? std::string("schema changes") : guard.refused()) +
          " is not allowed");
    }
    return make_error(ErrorKind::kUser,
                      "sweep query: " + std::string(sqlite3_errmsg(db_->handle())),
                      "check the SQL; the tables are described in docs/database.md");
  }
  if (stmt->handle() == nullptr) {
    return make_error(ErrorKind::kUser, "sweep query: the SQL text holds no statement");
  }
  if (!blank(tail)) {
    // A second statement is refused whatever it is: a SELECT followed by a DELETE must not
    // half-run. Preparing it tells comments (harmless) from statements.
    auto second = db_->prepare(tail, "preparing the rest of the query");
    if (!second.ok() || second->handle() != nullptr) {
      return read_only_refusal("it runs exactly one statement, and the text holds more (\"" +
                               tail.substr(0, 60) + "\")");
    }
  }
  if (!stmt->readonly() && !guard.read_pragma())
    return read_only_refusal("the statement would change the database");

  QueryResult result;
  int ncols = stmt->column_count();
  for (int c = 0; c < ncols; ++c) result.columns.push_back(stmt->column_name(c));
  std::vector<int> non_null(ncols, 0), numeric(ncols, 0);
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) {
      return make_error(ErrorKind::kUser, "sweep query: " + row.error().message,
                        "check the SQL; the tables are described in docs/database.md");
    }
    if (!*row) break;
    std::vector<std::optional<std::string>> cells;
    for (int c = 0; c < ncols; ++c) {
      if (stmt->is_null(c)) {
        cells.emplace_back(std::nullopt);
        continue;
      }
      ++non_null[c];
      if (stmt->is_numeric(c)) ++numeric[c];
      cells.emplace_back(stmt->text(c));
    }
    result.rows.push_back(std::move(cells));
  }
  for (int c = 0; c < ncols; ++c)
    result.numeric_column.push_back(non_null[c] > 0 && numeric[c] == non_null[c]);
  return result;
}

namespace {

struct QueryDeadline {
  std::chrono::steady_clock::time_point end;
  bool expired = false;
};

// Called by SQLite every kProgressSteps virtual-machine steps; non-zero interrupts the statement.
int past_deadline(void* deadline) {
  auto* d = static_cast<QueryDeadline*>(deadline);
  if (std::chrono::steady_clock::now() >= d->end) d->expired = true;
  return d->expired ? 1 : 0;
}

constexpr int kProgressSteps = 10000;

std::string format_seconds(double seconds) {
  std::ostringstream out;
  out << seconds;
  return out.str();
}

}  // namespace

Result<QueryResult> Store::query_readonly(const std::string& sql, double timeout_seconds) {
  if (!(timeout_seconds > 0)) return query_readonly(sql);
  QueryDeadline deadline{std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             std::chrono::duration<double>(timeout_seconds))};
  sqlite3_progress_handler(db_->handle(), kProgressSteps, &past_deadline, &deadline);
  auto result = query_readonly(sql);
  sqlite3_progress_handler(db_->handle(), 0, nullptr, nullptr);
  if (!result.ok() && deadline.expired) {
    return make_error(ErrorKind::kUser,
                      "sweep query: stopped after the time limit of " +
                          format_seconds(timeout_seconds) + " s (--timeout)",
                      "raise it with --timeout SECONDS (0: no limit), or narrow the query "
                      "(a LIMIT, a WHERE, a recursive CTE that ends)");
  }
  return result;
}

}  // namespace sweep
