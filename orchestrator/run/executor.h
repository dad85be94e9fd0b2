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
// after an orchestrator restart (it cannot be waited for, only watched).
struct ProcessHandle {
  int64_t pid = 0;
  bool child = true;
};

enum class ProcessState {
  kRunning,
  kExited,    // a child that ended; the exit code is known (128 + signal when killed)
  kVanished,  // a re-attached process that is gone; its exit code is unknown
};

struct PollResult {
  ProcessState state = ProcessState::kRunning;
  int exit_code = 0;  // kExited only
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
  // From now on, writes a byte to `fd` whenever a worker may have ended, so that a loop waiting
  // on it wakes at once; -1 stops that. Optional: without it the loop notices at its next tick.
  virtual void notify_exits(int fd) { (void)fd; }
};

}  // namespace sweep
