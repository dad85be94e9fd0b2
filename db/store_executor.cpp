// Cluster executors' ids per attempt (attempts.executor_id, schema version 5): a restarted
// orchestrator finds its Slurm jobs again by them, and `sweep jobs` / `sweep status` show them.
#include "db/sqlite.h"
#include "db/store.h"
#include "db/store_internal.h"

namespace sweep {

using store_internal::job_label;

namespace {

constexpr int kExecutorIdSchema = 5;

}  // namespace

Status Store::set_executor_id(int64_t job_id, const std::string& executor_id) {
  if (schema_version_ < kExecutorIdSchema) {
    return make_error(ErrorKind::kInternal, "the database predates attempts.executor_id");
  }
  auto stmt = db_->prepare(
      "UPDATE attempts SET executor_id = ? WHERE job_id = ? AND "
      "attempt = (SELECT attempt FROM jobs WHERE id = ?)",
      "recording the executor id of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(executor_id, job_id, job_id));
  return stmt->run();
}

Result<std::map<int64_t, std::string>> Store::latest_executor_ids(int64_t sweep_id,
                                                                  std::optional<JobState> state) {
  std::map<int64_t, std::string> out;
  if (schema_version_ < kExecutorIdSchema) return out;
  auto stmt = db_->prepare(
      std::string("SELECT a.job_id, a.executor_id FROM attempts a JOIN jobs j ON j.id = a.job_id "
                  "WHERE j.sweep_id = ?1 AND a.attempt = j.attempt AND a.executor_id IS NOT NULL") +
          (state ? " AND j.state = ?2" : ""),
      "listing the executor ids of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, sweep_id));
  if (state) SWEEP_RETURN_IF_ERROR(stmt->bind(2, to_string(*state)));
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out[stmt->int64(0)] = stmt->text(1);
  }
  return out;
}

Result<std::map<int, std::string>> Store::attempt_executor_ids(int64_t job_id) {
  std::map<int, std::string> out;
  if (schema_version_ < kExecutorIdSchema) return out;
  auto stmt = db_->prepare(
      "SELECT attempt, executor_id FROM attempts WHERE job_id = ? AND executor_id IS NOT NULL",
      "listing the executor ids of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, job_id));
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out[static_cast<int>(stmt->int64(0))] = stmt->text(1);
  }
  return out;
}

}  // namespace sweep
