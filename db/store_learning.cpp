// The learning check of each job (learning_checks, schema v5): one row per job, replaced by a
// later check of the same job (a retried or resumed attempt checks again).
#include "db/sqlite.h"
#include "db/store.h"
#include "db/store_internal.h"

namespace sweep {

using store_internal::job_label;
using store_internal::now_seconds;

Status Store::add_learning_check(const LearningCheckRow& check) {
  const std::string what = "recording the learning check of " + job_label(check.job_id) +
                           " at step " + std::to_string(check.step);
  if (schema_version_ < 5) {
    return make_error(ErrorKind::kDatabase, what + ": " + path_ + " has no learning_checks table",
                      "open it once with this version of sweep to migrate it");
  }
  auto stmt = db_->prepare(
      "INSERT OR REPLACE INTO learning_checks (job_id, step, passed, lora_b_norm, "
      "lora_grad_norm, loss_first, loss_last, reason, checked_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      what);
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(check.job_id, check.step, check.passed ? 1 : 0,
                                       check.lora_b_norm, check.lora_grad_norm, check.loss_first,
                                       check.loss_last, check.reason, now_seconds()));
  return stmt->run();
}

}  // namespace sweep
