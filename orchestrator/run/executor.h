// How the run loop starts, watches and finds worker processes. The loop only talks to this
// interface (it never looks at pids or /proc itself), so tests drive it with a fake executor and
// a cluster executor (Slurm) can sit beside the local one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace sweep {

// Everything needed to start one worker: an argv (never a shell line), extra environment
// variables on top of the orchestrator's own, and files for the worker's stdout and stderr.
struct LaunchRequest {
  std::vector<std::string> argv;  // argv[0]: an absolute path or a name looked up in PATH
  std::map<std::string, std::string> env;
  std::string working_dir;
  std::string stdout_path;
  std::string stderr_path;
};

// A started worker. `pid` identifies it to the OS; `child` is false for a process re-attached
// after an orchestrator restart (it cannot be waited for, only watched). A cluster executor also
// names it by its own id (`executor_id`, a Slurm job id; empty on this machine), recorded per
// attempt (attempts.executor_id) so that a restarted orchestrator finds it again; its `pid` is
// then a number unique among that executor's workers (the Slurm job id as a number).
struct ProcessHandle {
  int64_t pid = 0;
  bool child = true;
  std::string executor_id;
};

enum class ProcessState {
  kRunning,   // running, or still queued by a cluster
  kExited,    // a child that ended; the exit code is known (128 + signal when killed)
  kVanished,  // a re-attached process that is gone; its exit code is unknown
};

// Why a cluster ended a worker it was not asked to end (none for a local process).
enum class ClusterEnd {
  kNone,
  kInterrupted,  // time limit, preemption, node or boot failure: resumable from a checkpoint
  kOutOfMemory,  // the cluster killed it past its memory limit
  kCancelled,    // cancelled by someone else (scancel from outside)
};

struct PollResult {
  ProcessState state = ProcessState::kRunning;
  int exit_code = 0;  // kExited only
  ClusterEnd cluster_end = ClusterEnd::kNone;
  std::string detail;  // the cluster's own words, e.g. "Slurm job 42 TIMEOUT"

  static PollResult exited(int code) {
    PollResult r;
    r.state = ProcessState::kExited;
    r.exit_code = code;
    return r;
  }
  static PollResult vanished() {
    PollResult r;
    r.state = ProcessState::kVanished;
    return r;
  }
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Starts the worker. kNotFound when argv[0] cannot be executed, kIo for other failures.
  virtual Result<ProcessHandle> launch(const LaunchRequest& request) = 0;
  // Never blocks.
  virtual PollResult poll(const ProcessHandle& handle) = 0;
  // SIGTERM: the worker checkpoints and exits on its own.
  virtual void terminate(const ProcessHandle& handle) = 0;
  // SIGKILL.
  virtual void kill(const ProcessHandle& handle) = 0;

  // Live workers whose command line names `job_json` (an absolute, normalised path): after an
  // orchestrator crash, the workers it started. Pids are reused, so a pid alone proves nothing.
  virtual std::vector<int64_t> find_workers(const std::string& job_json) = 0;
  // True while `pid` is a live process (a zombie counts as dead).
  virtual bool alive(int64_t pid) = 0;
  // After an orchestrator restart: whether the worker recorded as `handle` (child false) still
  // runs `job_json` and may be watched again. By default: find_workers(job_json) names its pid.
  virtual bool still_running(const ProcessHandle& handle, const std::string& job_json);
  // How messages name a worker: "pid 123" by default, "Slurm job 42" under Slurm.
  virtual std::string describe(const ProcessHandle& handle) const;
  // Whether a re-attached worker must have been started from this host (true for processes).
  virtual bool host_bound() const { return true; }
  // From now on, writes a byte to `fd` whenever a worker may have ended, so that a loop waiting
  // on it wakes at once; -1 stops that. Optional: without it the loop notices at its next tick.
  virtual void notify_exits(int fd) { (void)fd; }
};

inline bool Executor::still_running(const ProcessHandle& handle, const std::string& job_json) {
  for (int64_t pid : find_workers(job_json)) {
    if (pid == handle.pid) return true;
  }
  return false;
}

inline std::string Executor::describe(const ProcessHandle& handle) const {
  return "pid " + std::to_string(handle.pid);
}

}  // namespace sweep
