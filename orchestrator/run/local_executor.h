// The executor for this machine: workers are child processes started with Boost.Process from an
// argv (no shell), each in its own process group so that a Ctrl-C in the terminal reaches only
// the orchestrator, which then decides what the workers get. Workers are deliberately not tied
// to the orchestrator's life (no PR_SET_PDEATHSIG): after `kill -9` of the orchestrator they keep
// training, and the next `sweep run` re-attaches them (docs/running.md).
#pragma once

#include "orchestrator/run/executor.h"

namespace sweep {

class LocalExecutor : public Executor {
 public:
  Result<ProcessHandle> launch(const LaunchRequest& request) override;
  PollResult poll(const ProcessHandle& handle) override;
  void terminate(const ProcessHandle& handle) override;
  void kill(const ProcessHandle& handle) override;
};

// True while `pid` names a live process (a zombie counts as dead).
bool process_alive(int64_t pid);
// The NUL-separated argv of a live process joined with spaces; empty when unreadable.
std::string process_cmdline(int64_t pid);

}  // namespace sweep
