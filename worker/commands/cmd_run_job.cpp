// `sweep-worker JOB.json [JOB2.json ...]` (also `sweep-worker run JOB.json ...`): runs one sweep
// job, or several compatible ones packed into this process over one shared frozen base
// (docs/worker-protocol.md, packed jobs).
#include <cstdlib>
#include <iostream>

#include "common/failure.h"
#include "common/file_system.h"
#include "protocol/job_file.h"
#include "worker/commands/commands.h"
#include "worker/train/job_runner.h"
#include "worker/train/tool_args.h"

namespace sweep::worker {
namespace {

// Testing hook (docs/worker-protocol.md, "Fault injection"): SWEEP_FAULT_INJECT=KIND:PATH_PART:N
// fails the chosen file-system call of this worker (common/file_system.h), e.g.
// "enospc:checkpoints:1" makes its first checkpoint write find the disk full.
void install_fault_injection() {
  const char* spec = std::getenv("SWEEP_FAULT_INJECT");
  if (!spec || !*spec) return;
  static FaultyFileSystem faulty(file_system(), parse_fault_rule(spec));
  set_file_system(&faulty);
}

}  // namespace

int cmd_run_job(const Args& args) {
  const char* usage =
      "usage: sweep-worker JOB.json [JOB2.json ...]   (or: sweep-worker run JOB.json ...)";
  if (train::asks_for_help(args)) {
    std::cout << usage << "\n";
    return kExitOk;
  }
  if (args.empty()) {
    std::cerr << usage << "\n";
    return kExitBadInput;
  }
  try {
    install_fault_injection();
  } catch (const Failure& e) {
    std::cerr << "sweep-worker: SWEEP_FAULT_INJECT: " << e.error().to_string() << "\n";
    return kExitBadInput;
  }
  for (const std::string& path : args) {
    // libgomp aborts the process, without a final event, when asked for far more threads than
    // the machine has.
    try {
      check_threads_for_this_machine(JobFile::read(path));
    } catch (const Failure& e) {
      std::cerr << "sweep-worker: " << path << ": " << e.error().to_string() << "\n";
      return kExitBadInput;
    }
  }
  return args.size() == 1 ? train::run_job_file(args[0]) : train::run_pack(args);
}

}  // namespace sweep::worker
