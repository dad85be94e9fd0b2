// Early stopping's records: one `decisions` row per (job, rung), written once, the evaluations
// (with the tokens seen when they were made) that decisions are taken from, and the training a
// sweep has done (budget caps).
#include <algorithm>
#include <cmath>

#include "db/sqlite.h"
#include "db/store.h"
#include "db/store_internal.h"

namespace sweep {

using store_internal::job_label;

Result<bool> Store::add_decision(const RungDecision& d) {
  auto stmt = db_->prepare(
      "INSERT OR IGNORE INTO decisions (job_id, rung, rung_tokens, step, tokens_seen, metric, "
      "value, compared_to, rank, peers, action, rule, decided_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      "recording the early-stopping decision on " + job_label(d.job_id) + " at rung " +
          std::to_string(d.rung));
  if (!stmt.ok()) return stmt.error();
  std::optional<double> compared_to;
  if (!std::isnan(d.compared_to)) compared_to = d.compared_to;
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(d.job_id, d.rung, d.rung_tokens, d.step, d.tokens_seen,
                                       d.metric, d.value, compared_to, d.rank, d.peers, d.action,
                                       d.rule, d.decided_at));
  SWEEP_RETURN_IF_ERROR(stmt->run());
  return db_->changes() > 0;
}

// A database older than version 3 (opened read-only, so not migrated) has no decisions table and
// no tokens columns: it holds no decisions and no tokens.
constexpr int kDecisionsSchema = 3;

Result<std::vector<RungDecision>> Store::decisions(int64_t sweep_id, int64_t latest) {
  if (schema_version_ < kDecisionsSchema) return std::vector<RungDecision>{};
  // The latest N: read newest first along the rowid, then put back in order. CROSS JOIN keeps
  // decisions outside (a sweep without decisions visits none of its jobs).
  auto stmt = db_->prepare(
      std::string(
          "SELECT d.job_id, d.rung, d.rung_tokens, d.step, d.tokens_seen, d.metric, "
          "d.value, d.compared_to, d.rank, d.peers, d.action, d.rule, d.decided_at, "
          "j.hash FROM decisions d CROSS JOIN jobs j ON j.id = d.job_id WHERE j.sweep_id = ? "
          "ORDER BY d.id ") +
          (latest > 0 ? "DESC LIMIT ?" : ""),
      "listing the early-stopping decisions of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, sweep_id));
  if (latest > 0) SWEEP_RETURN_IF_ERROR(stmt->bind(2, latest));
  std::vector<RungDecision> out;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    RungDecision d;
    d.job_id = stmt->int64(0);
    d.rung = static_cast<int>(stmt->int64(1));
    d.rung_tokens = stmt->int64(2);
    d.step = stmt->int64(3);
    d.tokens_seen = stmt->int64(4);
    d.metric = stmt->text(5);
    d.value = stmt->real(6);
    d.compared_to = stmt->opt_real(7).value_or(std::nan(""));
    d.rank = static_cast<int>(stmt->int64(8));
    d.peers = static_cast<int>(stmt->int64(9));
    d.action = stmt->text(10);
    d.rule = stmt->text(11);
    d.decided_at = stmt->real(12);
    d.job_hash = stmt->text(13);
    out.push_back(std::move(d));
  }
  if (latest > 0) std::reverse(out.begin(), out.end());
  return out;
}

Result<std::map<std::string, int64_t>> Store::decision_counts(int64_t sweep_id) {
  std::map<std::string, int64_t> counts;
  if (schema_version_ < kDecisionsSchema) return counts;
  auto stmt = db_->prepare(
      "SELECT d.action, COUNT(*) FROM decisions d CROSS JOIN jobs j ON j.id = d.job_id "
      "WHERE j.sweep_id = ? GROUP BY d.action",
      "counting the early-stopping decisions of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, sweep_id));
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    counts[stmt->text(0)] = stmt->int64(1);
  }
  return counts;
}

Result<std::vector<std::tuple<int64_t, int64_t, double>>> Store::evals_with_tokens(
    int64_t job_id, const std::string& metric) {
  if (schema_version_ < kDecisionsSchema)
    return std::vector<std::tuple<int64_t, int64_t, double>>{};
  auto stmt = db_->prepare(
      "SELECT step, tokens_seen, value FROM eval_metrics "
      "WHERE job_id = ? AND name = ? AND tokens_seen IS NOT NULL AND value IS NOT NULL "
      "ORDER BY step",
      "reading the evaluations of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(job_id, metric));
  std::vector<std::tuple<int64_t, int64_t, double>> out;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.emplace_back(stmt->int64(0), stmt->int64(1), stmt->real(2));
  }
  return out;
}

Result<Store::ComputeUsed> Store::compute_used(int64_t sweep_id) {
  const char* tokens = schema_version_ < kDecisionsSchema ? "0" : "MAX(m.tokens_seen)";
  // Version 7 keeps the sums (sweep_progress); version 6 one job_progress row per job; before,
  // every metrics row of the sweep.
  const std::string sql =
      schema_version_ >= store_internal::kStatusIndexSchema
          ? std::string("SELECT steps, tokens FROM sweep_progress WHERE sweep_id = ?")
      : schema_version_ >= store_internal::kDerivedSchema
          ? std::string(
                "SELECT COALESCE(SUM(step), 0), COALESCE(SUM(tokens_seen), 0) "
                "FROM job_progress WHERE sweep_id = ?")
          : std::string(
                "SELECT COALESCE(SUM(steps), 0), COALESCE(SUM(tokens), 0) FROM ("
                "  SELECT MAX(m.step) AS steps, ") +
                tokens +
                " AS tokens FROM metrics m"
                "  JOIN jobs j ON j.id = m.job_id WHERE j.sweep_id = ? GROUP BY m.job_id)";
  auto stmt = db_->prepare(sql, "adding up the training of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(sweep_id));
  auto row = stmt->step();
  if (!row.ok()) return row.error();
  ComputeUsed used;
  if (*row) {
    used.steps = stmt->int64(0);
    used.tokens = stmt->int64(1);
  }
  return used;
}

Result<std::map<int64_t, Store::JobProgress>> Store::job_progress(int64_t sweep_id,
                                                                  JobState state) {
  const char* tokens = schema_version_ < kDecisionsSchema ? "0" : "MAX(m.tokens_seen)";
  // From version 7 job_progress has max_steps; the params are read only for jobs without it.
  const std::string from_params = "CAST(json_extract(j.params, '$.max_steps') AS INTEGER)";
  const std::string max_steps =
      "COALESCE(" +
      (schema_version_ >= store_internal::kStatusIndexSchema ? "p.max_steps, " + from_params
                                                             : from_params) +
      ", 0)";
  const std::string sql =
      schema_version_ >= store_internal::kDerivedSchema
          ? std::string("SELECT j.id, COALESCE(p.step, 0), COALESCE(p.tokens_seen, 0), ") +
                max_steps +
                " FROM jobs j LEFT JOIN job_progress p ON p.job_id = j.id "
                "WHERE j.sweep_id = ?1 AND j.state = ?2"
          : std::string("SELECT j.id, COALESCE(MAX(m.step), 0), COALESCE(") + tokens + ", 0), " +
                max_steps +
                " FROM jobs j LEFT JOIN metrics m ON m.job_id = j.id "
                "WHERE j.sweep_id = ?1 AND j.state = ?2 GROUP BY j.id";
  auto stmt = db_->prepare(sql, "reading the progress of the " + std::string(to_string(state)) +
                                    " jobs of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(sweep_id, to_string(state)));
  std::map<int64_t, JobProgress> out;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out[stmt->int64(0)] = JobProgress{stmt->int64(1), stmt->int64(2), stmt->int64(3)};
  }
  return out;
}

}  // namespace sweep
