// One optimiser step of several jobs packed into one process (worker/model/pack.h): each job's
// Trainer loads and splices its own micro-batch, the base runs the language model once over all of
// them, each job's loss is backpropagated into its own adapters, and each job's optimizer steps.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "worker/model/pack.h"
#include "worker/train/trainer.h"

namespace sweep::train {

// What one job got out of a packed step: its result, or why it diverged (the others are not
// affected: their rows, losses and gradients never mix with its own).
struct PackStepOutcome {
  std::optional<StepResult> result;
  std::optional<std::string> diverged;  // DivergedError's message
};

// trainers[i] trains pack member active[i]. Jobs with different gradient_accumulation_steps take
// part in as many rounds as they have micro-batches. Throws what the shared forward or backward
// throws (out of memory...): that fails every job of the step.
std::vector<PackStepOutcome> pack_step(model::LanguagePack& pack, const std::vector<size_t>& active,
                                       const std::vector<Trainer*>& trainers);

}  // namespace sweep::train
