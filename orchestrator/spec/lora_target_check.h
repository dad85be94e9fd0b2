// The LoRA-target check of `sweep lint`, `sweep plan` and `sweep run`, before any job starts:
// each LoRA job's target_modules are resolved against the base model's Linear modules, read from
// its safetensors header(s) alone, by the rule the worker applies (protocol/lora_targets.h). A
// target entry that reaches nothing (or only the vision tower or projector, which the spec did
// not ask for) is refused with the modules it matches. LibTorch-free; reads files.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

// Tensor name -> shape of the checkpoint in `model_dir` (model.safetensors, or the shards of
// model.safetensors.index.json), from the headers only (8-byte little-endian length + JSON).
// kUser naming the file when a header cannot be read.
Result<std::map<std::string, std::vector<int64_t>>> read_tensor_shapes(
    const std::string& model_dir);

// Resolves the targets of every job of mode lora (duplicates skipped) over `linear_paths`; kUser
// naming the jobs (hash) and listing what the refused entries match.
Status check_lora_targets(const std::vector<ExpandedJob>& jobs,
                          const std::vector<std::string>& linear_paths);

// The check on the model in `model_dir` for the jobs `spec` expands to.
Status check_lora_targets(const SweepSpec& spec, const std::string& model_dir);
// The same, skipped (OK) while `model_dir` holds no config.json: `sweep lint` and `sweep plan`
// check a model that is there and leave a missing one (a built-in model not made yet) to
// `sweep run`.
Status check_lora_targets_if_present(const SweepSpec& spec, const std::string& model_dir);

}  // namespace sweep
