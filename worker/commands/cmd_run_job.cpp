// `sweep-worker JOB.json [JOB2.json ...]` (also `sweep-worker run JOB.json ...`): runs one sweep
// job, or several compatible ones packed into this process over one shared frozen base
// (docs/worker-protocol.md, packed jobs).
#include <iostream>

#include "worker/commands/commands.h"
#include "worker/train/job_runner.h"

namespace sweep::worker {

int cmd_run_job(const Args& args) {
  if (args.empty()) {
    std::cerr << "usage: sweep-worker JOB.json [JOB2.json ...]   (or: sweep-worker run JOB.json "
                 "...)\n";
    return kExitBadInput;
  }
  return args.size() == 1 ? train::run_job_file(args[0]) : train::run_pack(args);
}

}  // namespace sweep::worker
