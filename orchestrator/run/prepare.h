// The prepare step of `sweep run`, before any worker starts: the worker program exists, the
// built-in resources are made (once, shared by every job), the training and validation data
// pass `sweep check-data`'s checks, and the base model's config.json loads. Anything wrong here
// stops the run with a clear error instead of failing every job the same way.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

struct PreparedInputs {
  std::string base_model, train_data, val_data, image_folder;  // absolute, no builtin: refs
};

// The worker command: spec.worker_command, else $SWEEP_WORKER, else sweep-worker in `exe_dir`.
// kNotFound (with the paths tried) when the program is missing or not executable.
Result<std::vector<std::string>> resolve_worker_argv(const SweepSpec& spec,
                                                     const std::string& exe_dir);

// The real sweep-worker (for `make-builtin`, `merge`): $SWEEP_WORKER or exe_dir/sweep-worker.
std::string default_worker_path(const std::string& exe_dir);

// Resolves and checks data and base model. A failed data check returns kUser with the report
// (one line per problem, at most 20) in the message.
Result<PreparedInputs> prepare_inputs(const SweepSpec& spec, const std::string& exe_dir);

// Checks that `dir` holds a config.json that parses as a JSON object.
Status check_model_dir(const std::string& dir);

}  // namespace sweep
