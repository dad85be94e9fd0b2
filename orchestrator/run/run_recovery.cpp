// Picking up after an orchestrator that died (kill -9, power loss): jobs it left `running` are
// re-attached when their worker still lives, otherwise their events are read to the end and the
// job is recorded as it ended, or as lost and re-queued. A worker started just before the crash,
// whose start was never recorded, is found by its command line and stopped. Processes are found
// through the executor, so that a fake one can stand in for /proc in tests.
#include <algorithm>
#include <filesystem>

#include "common/failure.h"
#include "orchestrator/run/run_lock.h"
#include "orchestrator/run/run_loop.h"

namespace fs = std::filesystem;

namespace sweep {

namespace {

// How long a killed orphan may take to disappear before its job is started again anyway.
constexpr double kOrphanExitWaitS = 2.0;
constexpr double kOrphanPollS = 0.02;

// The attempt a job.json was written for; -1 when it cannot be read (then it is not our worker).
int job_file_attempt(const std::string& job_json) {
  auto job = capture([&] { return JobFile::read(job_json); });
  return job.ok() ? job->attempt : -1;
}

}  // namespace

Status RunLoop::recover() {
  SWEEP_RETURN_IF_ERROR(recover_decisions());
  auto running = store_.list_jobs(config_.sweep_id, JobState::kRunning);
  if (!running.ok()) return running.error();
  auto packs = store_.latest_pack_ids(config_.sweep_id);
  if (!packs.ok()) return packs.error();
  auto executor_ids = store_.latest_executor_ids(config_.sweep_id);
  if (!executor_ids.ok()) return executor_ids.error();
  for (const JobRecord& job : *running) {
    auto pack = packs->find(job.id);
    auto id = executor_ids->find(job.id);
    SWEEP_RETURN_IF_ERROR(reattach_or_requeue(job, pack == packs->end() ? 0 : pack->second,
                                              id == executor_ids->end() ? "" : id->second));
  }
  auto pending = store_.list_jobs(config_.sweep_id, JobState::kPending);
  if (!pending.ok()) return pending.error();
  for (const JobRecord& job : *pending) SWEEP_RETURN_IF_ERROR(kill_orphan(job));
  return ok_status();
}

// Early stopping after a crash: evaluations stored before it but not yet judged are judged now
// (decisions already recorded stand as they are), and a job waiting to run again whose stop was
// decided ends pruned instead.
Status RunLoop::recover_decisions() {
  if (!stopper_) return ok_status();
  auto jobs = store_.list_jobs(config_.sweep_id);
  if (!jobs.ok()) return jobs.error();
  for (const JobRecord& job : *jobs) {
    if (is_final(job.state)) continue;
    auto made = stopper_->judge(job.id, clock_.now());
    if (!made.ok()) return made.error();
    for (const RungDecision& d : *made) notify(describe_decision(job.hash, d));
    auto stop = stopper_->stop_of(job.id);
    if (!stop || job.state == JobState::kRunning) continue;  // running: see reattach_or_requeue
    notify("job " + job.hash + " pruned: its stop at rung " + std::to_string(stop->rung) +
           " was decided before the restart");
    SWEEP_RETURN_IF_ERROR(store_.set_state(job.id, JobState::kPruned,
                                           "stopped early at rung " + std::to_string(stop->rung)));
  }
  return ok_status();
}

Status RunLoop::kill_orphan(const JobRecord& job) {
  // The orchestrator may have died between starting a worker and recording it (the pid was not
  // stored yet): look for any process running this job's job.json.
  std::string job_json = fs::absolute(job_dir(job)).lexically_normal().string() + "/job.json";
  std::error_code ec;
  // A worker is started after its job.json is written: without the file none can be running, and
  // the look through every process is skipped (a fresh 1,000-job sweep looked 1,000 times).
  const bool maybe_started = fs::exists(job_json, ec) || ec;
  for (int64_t pid : maybe_started ? executor_.find_workers(job_json) : std::vector<int64_t>{}) {
    // A re-attached pack may still name the job.json of a member that ended before the crash.
    if (worker_of_pid(pid)) continue;
    notify("stopping unrecorded worker " + std::to_string(pid) + " of job " + job.hash);
    executor_.kill(ProcessHandle{pid, false, ""});
    // Wait for it to be gone: two writers must never share one events file.
    double deadline = clock_.now() + kOrphanExitWaitS;
    while (executor_.alive(pid) && clock_.now() < deadline) clock_.wait(kOrphanPollS, -1);
  }
  fs::remove(job_dir(job) + "/worker.pid", ec);
  return ok_status();
}

Status RunLoop::reattach_or_requeue(const JobRecord& job, int64_t pack_id,
                                    const std::string& executor_id) {
  std::string dir = job.run_dir.empty() ? job_dir(job) : job.run_dir;
  std::string job_json = dir + "/job.json";
  auto a = std::make_unique<Active>();
  a->job = job;
  a->job.run_dir = dir;
  a->handle = ProcessHandle{job.pid, false, executor_id};
  a->ingestor = std::make_unique<Ingestor>(store_, job.id, job.attempt, dir + "/events.jsonl",
                                           job.events_offset, job.last_seq);
  a->stderr_path = dir + "/worker-" + std::to_string(job.attempt) + ".err";
  a->started_at = job.started_at > 0 ? job.started_at : clock_.now();
  // A process is found again only on the host that started it; a cluster job from anywhere.
  bool alive = (!executor_.host_bound() || job.host == host_name()) &&
               executor_.still_running(a->handle, job_json) &&
               job_file_attempt(job_json) == job.attempt;
  std::optional<RungDecision> stop = stopper_ ? stopper_->stop_of(job.id) : std::nullopt;
  if (alive) {
    // The members of a pack share one worker, found again through any of them.
    Worker* w = worker_of_pid(job.pid);
    if (!w || w->pack_id != pack_id || pack_id == 0) {
      auto fresh = std::make_unique<Worker>();
      fresh->handle = a->handle;
      fresh->pack_id = pack_id;
      Slot* slot = scheduler_.free_slot();
      if (slot) {  // more survivors than slots: they run on, unslotted
        slot->job_id = job.id;
        fresh->slot_key = job.id;
      }
      w = fresh.get();
      workers_.push_back(std::move(fresh));
    }
    ++summary_.reattached;
    notify("re-attached job " + job.hash + " (" + executor_.describe(a->handle) +
           (pack_id ? ", pack " + std::to_string(pack_id) : "") + ")");
    Active& member = *a;
    w->members.push_back(std::move(a));
    // Decided before the crash.
    if (stop) SWEEP_RETURN_IF_ERROR(prune(*w, member, *stop, clock_.now()));
    return ok_status();
  }
  if (stop) mark_pruned(*a, *stop);  // decided before the crash; the pid may be another's now
  // Dead: store whatever it wrote after the last read, then record how it ended.
  auto n = a->ingestor->poll();
  if (!n.ok()) return n.error();
  std::string error;
  AttemptEnd end = classify(*a, PollResult::vanished(), &error);
  // Without a final event the orchestrator's crash, not the job, is the likely cause.
  if (end == AttemptEnd::kLost) end = AttemptEnd::kOrphaned;
  return finish(*a, end, std::nullopt, error);
}

}  // namespace sweep
