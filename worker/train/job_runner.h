// `sweep-worker JOB.json`: runs one job from its job file to a final event (docs/worker.md).
// Events go to <run_dir>/events.jsonl: started, progress, eval (step 0 = the base model, then every
// eval_every steps and at the end), checkpoint, heartbeat, and one of finished / stopped / failed.
#pragma once

#include <string>
#include <vector>

namespace sweep::train {

// Returns the process exit code (protocol/exit_codes.h): 0 finished or stopped by SIGTERM,
// 1 bad input (job file, model, data), 2 internal error, 3 diverged. Never throws: every failure
// after the events file is open becomes a `failed` event with its stage (load_model, load_data,
// train, eval, checkpoint); earlier ones are printed to stderr.
int run_job_file(const std::string& job_path);

// `sweep-worker JOB1.json JOB2.json ...`: the jobs as one pack over one frozen base loaded once
// (worker/model/pack.h). Each job writes its own events file and final event exactly as alone; a
// job that fails, diverges, finishes or is stopped (its <run_dir>/STOP file) leaves the others
// running; SIGTERM stops them all. A job that cannot share the process with the first (protocol/
// pack.h) fails at load_model. Returns 0 when every job wrote its final event, else 2.
int run_pack(const std::vector<std::string>& job_paths);

}  // namespace sweep::train
