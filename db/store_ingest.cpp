// Ingestion of worker events: metrics, evals, checkpoints, the events.jsonl cursor and job info.
// Every write is keyed so that re-ingesting the same events replaces rows instead of adding them.
#include <nlohmann/json.hpp>

#include "db/sqlite.h"
#include "db/store.h"
#include "db/store_internal.h"

namespace sweep {

using store_internal::job_label;
using store_internal::now_seconds;

namespace store_internal {

Result<JobRecord> job_from_row(const Stmt& row) {
  JobRecord j;
  j.id = row.int64(0);
  j.sweep_id = row.int64(1);
  j.hash = row.text(2);
  j.grid_index = static_cast<int>(row.int64(3));
  j.params_json = row.text(4);
  j.lora_scale = row.real(5);
  auto state = parse_job_state(row.text(6));
  if (!state) {
    return make_error(ErrorKind::kDatabase,
                      job_label(j.id) + " has unknown state '" + row.text(6) + "'",
                      "the database was written by a different version of sweep");
  }
  j.state = *state;
  j.attempt = static_cast<int>(row.int64(7));
  j.pid = row.int64(8);
  j.host = row.text(9);
  j.device = row.text(10);
  j.run_dir = row.text(11);
  j.created_at = row.real(12);
  j.started_at = row.real(13);
  j.finished_at = row.real(14);
  j.exit_code = row.opt_int(15);
  j.error = row.text(16);
  j.events_offset = static_cast<uint64_t>(row.int64(17));
  j.last_seq = row.int64(18);
  j.info_json = row.text(19);
  return j;
}

Status run_job_update(Db& db, Stmt& stmt, int64_t job_id) {
  SWEEP_RETURN_IF_ERROR(stmt.run());
  if (db.changes() == 0) {
    return make_error(ErrorKind::kNotFound, job_label(job_id) + " does not exist in " + db.path(),
                      "list the jobs with `sweep jobs`");
  }
  return ok_status();
}

}  // namespace store_internal

namespace {

// Writes one row per (name, value) into `table` (metrics or eval_metrics), replacing rows with
// the same key. The statement is prepared once per connection (a hundred thousand calls per
// second during ingestion).
Status put_values(Db& db, const char* table, int64_t job_id, int attempt, int64_t step,
                  const std::map<std::string, double>& values, const TrainingSeen& seen,
                  const std::string& what) {
  auto stmt = db.cached(std::string("INSERT OR REPLACE INTO ") + table +
                            " (job_id, name, step, attempt, value, samples_seen, tokens_seen) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        what);
  if (!stmt.ok()) return stmt.error();
  Stmt& insert = **stmt;
  for (const auto& [name, value] : values) {
    SWEEP_RETURN_IF_ERROR(insert.reset());
    SWEEP_RETURN_IF_ERROR(
        insert.bind_all(job_id, name, step, attempt, value, seen.samples, seen.tokens));
    SWEEP_RETURN_IF_ERROR(insert.run());
  }
  return ok_status();
}

// Schema version 6: job_progress keeps the job's largest step and tokens_seen so far (and from
// version 7 its max_steps, read from its params when its first row is written).
Status put_progress(Db& db, int64_t job_id, int64_t step, const TrainingSeen& seen,
                    const std::string& what) {
  // Every step after the first finds the job's row: update it without reading the jobs row (its
  // sweep id and params), which only the first row needs.
  auto update = db.cached(
      "UPDATE job_progress SET step = MAX(step, ?2), "
      "tokens_seen = CASE WHEN tokens_seen IS NULL THEN ?3 WHEN ?3 IS NULL THEN tokens_seen "
      "ELSE MAX(tokens_seen, ?3) END WHERE job_id = ?1",
      what);
  if (!update.ok()) return update.error();
  SWEEP_RETURN_IF_ERROR((*update)->bind_all(job_id, step, seen.tokens));
  SWEEP_RETURN_IF_ERROR((*update)->run());
  if (db.changes() > 0) return ok_status();
  auto insert = db.cached(
      "INSERT INTO job_progress (job_id, sweep_id, step, tokens_seen, max_steps) "
      "SELECT ?1, sweep_id, ?2, ?3, CAST(json_extract(params, '$.max_steps') AS INTEGER) "
      "FROM jobs WHERE id = ?1",
      what);
  if (!insert.ok()) return insert.error();
  SWEEP_RETURN_IF_ERROR((*insert)->bind_all(job_id, step, seen.tokens));
  return (*insert)->run();
}

}  // namespace

Status Store::add_metrics(int64_t job_id, int attempt, int64_t step,
                          const std::map<std::string, double>& values, const TrainingSeen& seen) {
  return transaction([&]() -> Status {
    const std::string what =
        "recording metrics of " + job_label(job_id) + " at step " + std::to_string(step);
    SWEEP_RETURN_IF_ERROR(put_values(*db_, "metrics", job_id, attempt, step, values, seen, what));
    if (values.empty() || schema_version_ < store_internal::kDerivedSchema) return ok_status();
    return put_progress(*db_, job_id, step, seen, what);
  });
}

Status Store::add_eval(int64_t job_id, int attempt, int64_t step,
                       const std::map<std::string, double>& metrics, const TrainingSeen& seen) {
  return transaction([&] {
    return put_values(
        *db_, "eval_metrics", job_id, attempt, step, metrics, seen,
        "recording the eval of " + job_label(job_id) + " at step " + std::to_string(step));
  });
}

Status Store::add_checkpoint(int64_t job_id, int64_t step, const std::string& path,
                             const std::string& metrics_json) {
  std::string what = "recording checkpoint " + path + " of " + job_label(job_id);
  auto stmt = db_->prepare(
      "INSERT INTO checkpoints (job_id, step, path, metrics, kept, created_at) "
      "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT(job_id, path) DO UPDATE SET step = excluded.step, "
      "metrics = excluded.metrics, kept = 1, deleted_at = NULL",
      what);
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(
      job_id, step, path, metrics_json.empty() ? std::string("{}") : metrics_json, now_seconds()));
  return stmt->run();
}

Status Store::mark_checkpoint_deleted(int64_t job_id, const std::string& path) {
  std::string what = "marking checkpoint " + path + " of " + job_label(job_id) + " deleted";
  auto stmt = db_->prepare(
      "UPDATE checkpoints SET kept = 0, deleted_at = COALESCE(deleted_at, ?) "
      "WHERE job_id = ? AND path = ?",
      what);
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(now_seconds(), job_id, path));
  SWEEP_RETURN_IF_ERROR(stmt->run());
  if (db_->changes() == 0) {
    return make_error(ErrorKind::kNotFound,
                      "checkpoint " + path + " of " + job_label(job_id) + " was never recorded");
  }
  return ok_status();
}

Result<std::vector<CheckpointRow>> Store::checkpoints(int64_t job_id) {
  auto stmt = db_->prepare(
      "SELECT job_id, step, path, metrics, kept FROM checkpoints WHERE job_id = ? "
      "ORDER BY step, id",
      "listing checkpoints of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, job_id));
  std::vector<CheckpointRow> out;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(CheckpointRow{stmt->int64(0), stmt->int64(1), stmt->text(2), stmt->text(3),
                                stmt->int64(4) != 0});
  }
  return out;
}

Status Store::set_cursor(int64_t job_id, uint64_t events_offset, int64_t last_seq) {
  auto stmt = db_->cached("UPDATE jobs SET events_offset = ?, last_seq = ? WHERE id = ?",
                          "saving the events cursor of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR((*stmt)->bind_all(static_cast<int64_t>(events_offset), last_seq, job_id));
  return store_internal::run_job_update(*db_, **stmt, job_id);
}

Status Store::set_job_info(int64_t job_id, const std::string& key, const std::string& json_value) {
  nlohmann::json value = nlohmann::json::parse(json_value, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return make_error(ErrorKind::kUser, "info '" + key + "' of " + job_label(job_id) +
                                            " is not valid JSON: " + json_value.substr(0, 80));
  }
  return transaction([&]() -> Status {
    auto job = read_job(job_id);
    if (!job.ok()) return job.error();
    nlohmann::json info = nlohmann::json::parse(job->info_json, nullptr, false);
    if (!info.is_object()) info = nlohmann::json::object();
    info[key] = std::move(value);
    auto stmt = db_->cached("UPDATE jobs SET info = ? WHERE id = ?",
                            "saving info '" + key + "' of " + job_label(job_id));
    if (!stmt.ok()) return stmt.error();
    SWEEP_RETURN_IF_ERROR((*stmt)->bind_all(info.dump(), job_id));
    return store_internal::run_job_update(*db_, **stmt, job_id);
  });
}

}  // namespace sweep
