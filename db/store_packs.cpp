// Packed workers' attempts (attempts.pack_id, schema version 4): the attempts one worker process
// runs together share a pack id, so a restarted orchestrator re-attaches the pack as one.
#include "db/sqlite.h"
#include "db/store.h"

namespace sweep {

Result<int64_t> Store::start_pack_attempts(const std::vector<PackMemberStart>& members, int64_t pid,
                                           const std::string& host, const std::string& device) {
  int64_t pack_id = 0;
  SWEEP_RETURN_IF_ERROR(transaction([&]() -> Status {
    const std::string what = "starting a pack of " + std::to_string(members.size()) + " jobs";
    auto next = db_->prepare("SELECT COALESCE(MAX(pack_id), 0) + 1 FROM attempts", what);
    if (!next.ok()) return next.error();
    auto row = next->step();
    if (!row.ok()) return row.error();
    pack_id = next->int64(0);
    for (const PackMemberStart& m : members) {
      SWEEP_RETURN_IF_ERROR(start_attempt(m.job_id, pid, host, device, m.run_dir));
      auto mark = db_->prepare(
          "UPDATE attempts SET pack_id = ? WHERE job_id = ? AND "
          "attempt = (SELECT attempt FROM jobs WHERE id = ?)",
          what);
      if (!mark.ok()) return mark.error();
      SWEEP_RETURN_IF_ERROR(mark->bind_all(pack_id, m.job_id, m.job_id));
      SWEEP_RETURN_IF_ERROR(mark->run());
    }
    return ok_status();
  }));
  return pack_id;
}

Result<std::map<int64_t, int64_t>> Store::latest_pack_ids(int64_t sweep_id,
                                                          std::optional<JobState> state) {
  auto stmt = db_->prepare(
      std::string("SELECT a.job_id, a.pack_id FROM attempts a JOIN jobs j ON j.id = a.job_id "
                  "WHERE j.sweep_id = ?1 AND a.attempt = j.attempt AND a.pack_id IS NOT NULL") +
          (state ? " AND j.state = ?2" : ""),
      "listing the packs of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, sweep_id));
  if (state) SWEEP_RETURN_IF_ERROR(stmt->bind(2, to_string(*state)));
  std::map<int64_t, int64_t> out;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out[stmt->int64(0)] = stmt->int64(1);
  }
  return out;
}

}  // namespace sweep
