// Kept evaluation outputs: a few generated answers per evaluation, beside their references, so that
// a report can show what a job answers at its best checkpoint.
#include "db/sqlite.h"
#include "db/store.h"
#include "db/store_internal.h"

namespace sweep {

using store_internal::job_label;

Status Store::add_predictions(int64_t job_id, int64_t step,
                              const std::vector<PredictionRow>& rows) {
  if (rows.empty()) return ok_status();
  const std::string what =
      "recording the predictions of " + job_label(job_id) + " at step " + std::to_string(step);
  return transaction([&]() -> Status {
    auto stmt = db_->prepare(
        "INSERT OR REPLACE INTO predictions "
        "(job_id, step, sample, sample_id, prompt, reference, prediction) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        what);
    if (!stmt.ok()) return stmt.error();
    for (const PredictionRow& r : rows) {
      SWEEP_RETURN_IF_ERROR(stmt->reset());
      SWEEP_RETURN_IF_ERROR(
          stmt->bind_all(job_id, step, r.sample, r.sample_id, r.prompt, r.reference, r.prediction));
      SWEEP_RETURN_IF_ERROR(stmt->run());
    }
    return ok_status();
  });
}

Result<std::vector<PredictionRow>> Store::predictions(int64_t job_id, std::optional<int64_t> step) {
  auto stmt = db_->prepare(
      "SELECT job_id, step, sample, sample_id, prompt, reference, prediction FROM predictions "
      "WHERE job_id = ? AND (? IS NULL OR step = ?) ORDER BY step, sample",
      "reading the predictions of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(job_id, step, step));
  std::vector<PredictionRow> out;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(PredictionRow{stmt->int64(0), stmt->int64(1), stmt->int64(2), stmt->text(3),
                                stmt->text(4), stmt->text(5), stmt->text(6)});
  }
  return out;
}

}  // namespace sweep
