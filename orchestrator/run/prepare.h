// The prepare step of `sweep run`, before any worker starts: the worker program exists, the
// built-in resources are made (once, shared by every job), the base model's config.json loads,
// and the training and validation data pass `sweep check-data --model`'s checks with the base
// model's tokenizer at each maximum sequence length the jobs train with (so a dataset whose
// samples would train on nothing never reaches a worker). Anything wrong here stops the run with
// a clear error instead of failing every job the same way, or worse, succeeding on nothing.
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

// Resolves and checks base model and data. A failed data check returns kUser with the report
// (one line per error naming the file, sample index and id, at most 20; how to fix each kind)
// in the message. A model_max_length past the model's max_position_embeddings is clamped, with
// a warning in the log (data/max_length.h).
Result<PreparedInputs> prepare_inputs(const SweepSpec& spec, const std::string& exe_dir);

// Checks that `dir` holds a config.json that parses as a JSON object.
Status check_model_dir(const std::string& dir);

}  // namespace sweep
