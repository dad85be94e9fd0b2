// `sweep-worker JOB.json`: runs one job from its job file to a final event (docs/worker.md).
// Events go to <run_dir>/events.jsonl: started, progress, eval (step 0 = the base model, then every
// eval_every steps and at the end), checkpoint, heartbeat, and one of finished / stopped / failed.
#pragma once

#include <string>

namespace sweep::train {

// Returns the process exit code (protocol/exit_codes.h): 0 finished or stopped by SIGTERM,
// 1 bad input (job file, model, data), 2 internal error, 3 diverged. Never throws: every failure
// after the events file is open becomes a `failed` event with its stage (load_model, load_data,
// train, eval, checkpoint); earlier ones are printed to stderr.
int run_job_file(const std::string& job_path);

}  // namespace sweep::train
