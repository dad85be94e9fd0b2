// Picking up after an orchestrator that died (kill -9, power loss): jobs it left `running` are
// re-attached when their worker still lives, otherwise their events are read to the end and the
// job is recorded as it ended, or as lost and re-queued. A worker started just before the crash,
// whose start was never recorded, is found by its command line and stopped.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "orchestrator/run/local_executor.h"
#include "orchestrator/run/run_lock.h"
#include "orchestrator/run/run_loop.h"

namespace fs = std::filesystem;

namespace sweep {

namespace {

// True when `pid` is alive and runs the worker of this job.json (pids are reused).
bool runs_job(int64_t pid, const std::string& job_json) {
  if (!process_alive(pid)) return false;
  return process_cmdline(pid).find(job_json) != std::string::npos;
}

// Pids of the live processes whose command line contains `job_json`.
std::vector<int64_t> processes_running(const std::string& job_json) {
  std::vector<int64_t> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    int64_t pid = std::atoll(name.c_str());
    if (runs_job(pid, job_json)) pids.push_back(pid);
  }
  return pids;
}

int job_file_attempt(const std::string& job_json) {
  try {
    return JobFile::read(job_json).attempt;
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

Status RunLoop::recover() {
  auto running = store_.list_jobs(config_.sweep_id, JobState::kRunning);
  if (!running.ok()) return running.error();
  for (const JobRecord& job : *running) SWEEP_RETURN_IF_ERROR(reattach_or_requeue(job));
  auto pending = store_.list_jobs(config_.sweep_id, JobState::kPending);
  if (!pending.ok()) return pending.error();
  for (const JobRecord& job : *pending) SWEEP_RETURN_IF_ERROR(kill_orphan(job));
  return ok_status();
}

Status RunLoop::kill_orphan(const JobRecord& job) {
  // The orchestrator may have died between starting a worker and recording it (the pid was not
  // stored yet): look for any process running this job's job.json.
  std::string job_json = fs::absolute(job_dir(job)).lexically_normal().string() + "/job.json";
  for (int64_t pid : processes_running(job_json)) {
    notify("stopping unrecorded worker " + std::to_string(pid) + " of job " + job.hash);
    executor_.kill(ProcessHandle{pid, false});
    // Wait for it to be gone: two writers must never share one events file.
    for (int i = 0; i < 100 && process_alive(pid); ++i) ::usleep(20000);
  }
  std::error_code ec;
  fs::remove(job_dir(job) + "/worker.pid", ec);
  return ok_status();
}

Status RunLoop::reattach_or_requeue(const JobRecord& job) {
  std::string dir = job.run_dir.empty() ? job_dir(job) : job.run_dir;
  std::string job_json = dir + "/job.json";
  auto a = std::make_unique<Active>();
  a->job = job;
  a->job.run_dir = dir;
  a->handle = ProcessHandle{job.pid, false};
  a->ingestor = std::make_unique<Ingestor>(store_, job.id, job.attempt, dir + "/events.jsonl",
                                           job.events_offset, job.last_seq);
  a->stderr_path = dir + "/worker-" + std::to_string(job.attempt) + ".err";
  a->started_at = job.started_at > 0 ? job.started_at : unix_time_now();
  bool alive = job.host == host_name() && runs_job(job.pid, job_json) &&
               job_file_attempt(job_json) == job.attempt;
  if (alive) {
    Slot* slot = scheduler_.free_slot();
    if (slot) slot->job_id = job.id;  // more survivors than slots: they run on, unslotted
    ++summary_.reattached;
    notify("re-attached job " + job.hash + " (pid " + std::to_string(job.pid) + ")");
    active_.push_back(std::move(a));
    return ok_status();
  }
  // Dead: store whatever it wrote after the last read, then record how it ended.
  auto n = a->ingestor->poll();
  if (!n.ok()) return n.error();
  std::string error;
  AttemptEnd end = classify(*a, PollResult{ProcessState::kVanished, 0}, &error);
  if (end == AttemptEnd::kLost) {
    // The orchestrator's crash, not the job, is the likely cause: re-queue without using a retry.
    SWEEP_RETURN_IF_ERROR(store_.transaction([&]() -> Status {
      SWEEP_RETURN_IF_ERROR(store_.finish_attempt(job.id, JobState::kLost, std::nullopt, error));
      return store_.set_state(job.id, JobState::kPending);
    }));
    notify("job " + job.hash + " lost (" + error + "), re-queued");
    return ok_status();
  }
  return finish(*a, end, std::nullopt, error);
}

}  // namespace sweep
