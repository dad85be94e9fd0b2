// `sweep-worker JOB.json` (also `sweep-worker run JOB.json`): runs one sweep job.
#include <iostream>

#include "worker/commands/commands.h"
#include "worker/train/job_runner.h"

namespace sweep::worker {

int cmd_run_job(const Args& args) {
  if (args.size() != 1) {
    std::cerr << "usage: sweep-worker JOB.json   (or: sweep-worker run JOB.json)\n";
    return kExitBadInput;
  }
  return train::run_job_file(args[0]);
}

}  // namespace sweep::worker
