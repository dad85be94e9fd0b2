// The objective of a sweep: the eval metric that ranks its jobs and whether lower or higher is
// better. The sweep file names it, the database keeps it per sweep (sweeps.objective_mode holds
// "min" or "max") and job.json hands it to the worker, so every component reads and writes the
// mode through these functions. LibTorch-free, header-only.
#pragma once

#include <optional>
#include <string>

namespace sweep {

struct Objective {
  enum class Mode { kMin, kMax };

  std::string metric = "val_loss";
  Mode mode = Mode::kMin;

  bool maximize() const { return mode == Mode::kMax; }
  // True when `a` is strictly better than `b` for this objective.
  bool better(double a, double b) const { return maximize() ? a > b : a < b; }
};

// "min" | "max".
inline const char* to_string(Objective::Mode mode) {
  return mode == Objective::Mode::kMax ? "max" : "min";
}

// nullopt for anything but "min" and "max".
inline std::optional<Objective::Mode> parse_objective_mode(const std::string& text) {
  if (text == "min") return Objective::Mode::kMin;
  if (text == "max") return Objective::Mode::kMax;
  return std::nullopt;
}

// The mode a metric gets when the sweep file does not say: min for losses, max for the rest
// (accuracy, exact match).
inline Objective::Mode default_objective_mode(const std::string& metric) {
  return metric.find("loss") != std::string::npos ? Objective::Mode::kMin : Objective::Mode::kMax;
}

}  // namespace sweep
