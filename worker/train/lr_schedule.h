// The learning-rate schedule of a job, as a factor of each param group's peak rate. Matches the
// Hugging Face `transformers` schedules LLaVA's train.py uses (get_cosine_schedule_with_warmup,
// get_linear_schedule_with_warmup, get_constant_schedule_with_warmup): the factor for the update
// made at optimiser step `s` (0-based) is
//   warmup:   s / warmup_steps                          for s < warmup_steps
//   cosine:   0.5 * (1 + cos(pi * p))                   p = (s - warmup) / (total - warmup)
//   linear:   max(0, (total - s) / (total - warmup))
//   constant: 1
// so with warmup the first update uses factor 0. LibTorch-free.
#pragma once

#include <string>

namespace sweep::train {

enum class ScheduleKind { kCosine, kLinear, kConstant };

// Throws std::invalid_argument listing the known names.
ScheduleKind parse_schedule_kind(const std::string& name);
const char* schedule_kind_name(ScheduleKind kind);

// warmup_steps when > 0, else ceil(total_steps * warmup_ratio) (transformers' get_warmup_steps).
int resolve_warmup_steps(int total_steps, double warmup_ratio, int warmup_steps);

class LrSchedule {
 public:
  LrSchedule(ScheduleKind kind, int total_steps, int warmup_steps);

  // Factor in [0, 1] for the update made at 0-based optimiser step `step`.
  double factor(int step) const;

  ScheduleKind kind() const { return kind_; }
  int total_steps() const { return total_steps_; }
  int warmup_steps() const { return warmup_steps_; }

 private:
  ScheduleKind kind_;
  int total_steps_;
  int warmup_steps_;
};

}  // namespace sweep::train
