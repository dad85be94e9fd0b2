#include "worker/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sweep::train {

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "cosine") return ScheduleKind::kCosine;
  if (name == "linear") return ScheduleKind::kLinear;
  if (name == "constant") return ScheduleKind::kConstant;
  throw std::invalid_argument("unknown lr_scheduler '" + name +
                              "': use one of cosine, linear, constant");
}

const char* schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kCosine:
      return "cosine";
    case ScheduleKind::kLinear:
      return "linear";
    case ScheduleKind::kConstant:
      return "constant";
  }
  return "?";
}

int resolve_warmup_steps(int total_steps, double warmup_ratio, int warmup_steps) {
  if (warmup_steps > 0) return warmup_steps;
  // Plain double arithmetic, as Python's math.ceil(total * ratio) does it, so the counts agree.
  return static_cast<int>(std::ceil(total_steps * warmup_ratio));
}

LrSchedule::LrSchedule(ScheduleKind kind, int total_steps, int warmup_steps)
    : kind_(kind),
      total_steps_(std::max(total_steps, 0)),
      warmup_steps_(std::max(warmup_steps, 0)) {}

double LrSchedule::factor(int step) const {
  if (step < warmup_steps_) return static_cast<double>(step) / std::max(1, warmup_steps_);
  const double after = static_cast<double>(step - warmup_steps_);
  const double span = std::max(1, total_steps_ - warmup_steps_);
  switch (kind_) {
    case ScheduleKind::kConstant:
      return 1.0;
    case ScheduleKind::kLinear:
      return std::max(0.0, static_cast<double>(total_steps_ - step) / span);
    case ScheduleKind::kCosine:
      return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * after / span)));
  }
  return 1.0;
}

}  // namespace sweep::train
