// Bulk reads of a sweep's curves (training metrics and evaluations) for reports.
#include <algorithm>
#include <limits>

#include "db/sqlite.h"
#include "db/store.h"
#include "db/store_internal.h"

namespace sweep {

Status Store::for_each_curve_point(int64_t sweep_id, bool eval, const std::string& name,
                                   const std::function<void(const CurvePoint&)>& fn) {
  // The primary key (job_id, name, step) gives the order without a sort.
  const std::string table = eval ? "eval_metrics" : "metrics";
  auto stmt = db_->prepare("SELECT m.job_id, m.name, m.step, m.value, m.tokens_seen FROM " + table +
                               " m WHERE m.job_id IN (SELECT id FROM jobs WHERE sweep_id = ?) "
                               "AND (? = '' OR m.name = ?) ORDER BY m.job_id, m.name, m.step",
                           "reading the " + table + " of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(sweep_id, name, name));
  CurvePoint p;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    p.job_id = stmt->int64(0);
    p.name = stmt->text(1);
    p.step = stmt->int64(2);
    p.value = stmt->opt_real(3).value_or(std::numeric_limits<double>::quiet_NaN());  // NULL: NaN
    p.tokens_seen = stmt->opt_int64(4);
    fn(p);
  }
  return ok_status();
}

Result<std::vector<std::string>> Store::eval_metric_names(int64_t sweep_id) {
  auto stmt = db_->prepare(
      "SELECT DISTINCT e.name FROM eval_metrics e "
      "WHERE e.job_id IN (SELECT id FROM jobs WHERE sweep_id = ?) ORDER BY e.name",
      "reading the eval metric names of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(sweep_id));
  std::vector<std::string> names;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    names.push_back(stmt->text(0));
  }
  return names;
}

Status Store::check_eval_metric(const SweepRecord& sweep, const std::string& metric) {
  if (metric.empty()) return ok_status();
  if (schema_version_ >= store_internal::kDerivedSchema) {
    // One index seek into eval_best; the full list only for the error message.
    auto known = db_->prepare("SELECT 1 FROM eval_best WHERE sweep_id = ? AND name = ? LIMIT 1",
                              "looking up eval metric " + metric);
    if (!known.ok()) return known.error();
    SWEEP_RETURN_IF_ERROR(known->bind_all(sweep.id, metric));
    auto row = known->step();
    if (!row.ok()) return row.error();
    if (*row) return ok_status();
  }
  auto names = eval_metric_names(sweep.id);
  if (!names.ok()) return names.error();
  if (names->empty() || std::find(names->begin(), names->end(), metric) != names->end())
    return ok_status();
  std::string list;
  for (const std::string& name : *names) list += (list.empty() ? "" : ", ") + name;
  return make_error(ErrorKind::kUser,
                    "--metric '" + metric + "': sweep '" + sweep.name +
                        "' has no evaluation of it (its eval metrics: " + list + ")",
                    "pass --metric with one of: " + list);
}

}  // namespace sweep
