// Samplers of a random or sobol search (docs/sweep-file.md, "search"): where each trial's point
// in the search space (the `grid:` block) comes from. expand_grid asks one for trials
// 0 .. n_trials-1. The interface leaves room for a model-based sampler (e.g. TPE) that proposes
// later trials from the objectives of earlier ones, told to it through `tell`.
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

class Sampler {
 public:
  virtual ~Sampler() = default;
  // The point of trial `trial` (>= 0): {key: value} for every grid key, each value allowed for
  // its key and normalised. For the random and sobol samplers a pure function of (seed, trial,
  // the space): the same in every run, on every machine, however many trials are asked for.
  virtual nlohmann::json ask(int trial) = 0;
  // The objective trial `trial` reached. The random and sobol samplers ignore it.
  virtual void tell(int /*trial*/, double /*objective*/) {}
};

// The sampler of a random or sobol spec; nullptr for a grid search (expand_grid enumerates it).
std::unique_ptr<Sampler> make_sampler(const SweepSpec& spec);

// Sampled reals keep this many significant digits: a last-bit difference between two machines'
// exp/log cannot change a job's hash, and tables read well (0.001234).
constexpr int kSampleSignificantDigits = 4;

// `x` rounded to `digits` significant decimal digits (through its decimal text, so the result is
// the same double everywhere).
double round_significant(double x, int digits);

// The point for one vector of unit draws (u[d] in [0, 1) for the d-th grid axis): a choice axis
// takes values[floor(u * n)]; a uniform / loguniform axis low + u * (high - low), in the log
// domain for loguniform, rounded to kSampleSignificantDigits (an integer key: to the nearest
// integer) and kept inside [low, high]; a linked axis multiplier * the value drawn for its base
// key. Shared by the samplers; public for tests.
nlohmann::json point_from_units(const std::vector<GridAxis>& grid, const std::vector<double>& u);

}  // namespace sweep
