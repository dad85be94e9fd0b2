// The learning check (docs/worker.md, "Learning check"): after learning_check_steps optimiser
// steps, does the job's adapter move? Its LoRA B matrices must have left zero, gradients must
// reach the adapters and the train loss must have moved. The verdict is a `learning_check` event;
// with stop_if_not_learning a failed check ends the job (NotLearningError).
#pragma once

#include <optional>
#include <stdexcept>
#include <vector>

#include "protocol/events.h"
#include "protocol/train_params.h"
#include "worker/model/llava.h"
#include "worker/train/trainer.h"

namespace sweep::train {

// The train loss "moved" when the mean of the second half of the checked steps' losses differs
// from the mean of the first half by more than this fraction of the first.
constexpr double kLossMovedRelative = 1e-3;

// A failed learning check with stop_if_not_learning: the job ends as failed at stage
// learning_check, never retried.
class NotLearningError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What the verdict is made from.
struct LearningCheckInputs {
  int64_t step = 0;
  std::optional<double> lora_b_norm;     // L2 norm over every lora_B; nullopt: no adapters
  std::optional<double> lora_grad_norm;  // L2 norm of the adapters' gradients (full mode: all)
  std::vector<double> losses;            // train loss of each checked step, in order
};

// The verdict, pure: passed when the B norm (if any) and the gradient norm are finite and > 0,
// every loss is finite, and with two or more losses the halves' means differ by more than
// kLossMovedRelative (relative to the first half's). `reason` names each criterion that failed.
LearningCheckEvent judge_learning(const LearningCheckInputs& in);

// (L2 norm of the lora_B weights, L2 norm of the LoRA gradients) of `m`; nullopt where the model
// has no adapter or no adapter gradient.
std::pair<std::optional<double>, std::optional<double>> lora_norms(
    model::LlavaForConditionalGeneration& m);

// One job's check: records each step's loss and runs at params.learning_check_step().
class LearningCheck {
 public:
  // `first_step`: the steps already done when this process took the job over (a resumed run
  // checks only when the check step lies ahead, from the losses it sees itself).
  LearningCheck(const TrainParams& params, int first_step);
  // Records `r`; true when the check is due after it.
  bool record(const StepResult& r);
  // The verdict after the step just recorded, from `m`'s adapters (the gradients of that step are
  // still in place); `r` gives the step's global gradient norm for mode full.
  LearningCheckEvent run(model::LlavaForConditionalGeneration& m, const StepResult& r) const;

 private:
  int check_step_;
  bool lora_;
  std::vector<double> losses_;
};

}  // namespace sweep::train
