// The executor for this machine: workers are child processes started with Boost.Process from an
// argv (no shell), each in its own process group so that a Ctrl-C in the terminal reaches only
// the orchestrator, which then decides what the workers get. Workers are deliberately not tied
// to the orchestrator's life (no PR_SET_PDEATHSIG): after `kill -9` of the orchestrator they keep
// training, and the next `sweep run` finds them by command line and re-attaches them
// (docs/running.md).
//
// Not thread-safe. notify_exits installs a process-wide SIGCHLD handler: use it from one
// LocalExecutor at a time.
#pragma once

#include "orchestrator/run/executor.h"

namespace sweep {

class LocalExecutor : public Executor {
 public:
  ~LocalExecutor() override;

  Result<ProcessHandle> launch(const LaunchRequest& request) override;
  PollResult poll(const ProcessHandle& handle) override;
  void terminate(const ProcessHandle& handle) override;
  void kill(const ProcessHandle& handle) override;
  // Scans /proc for processes whose NUL-separated argv contains `job_json`.
  std::vector<int64_t> find_workers(const std::string& job_json) override;
  bool alive(int64_t pid) override;
  // SIGCHLD writes to `fd`; the previous handler is restored by notify_exits(-1).
  void notify_exits(int fd) override;

 private:
  bool handler_installed_ = false;
};

// True while `pid` names a live process (a zombie counts as dead).
bool process_alive(int64_t pid);

}  // namespace sweep
