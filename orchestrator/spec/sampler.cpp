// The random and scrambled-Sobol samplers. Both reduce a trial to one number in [0, 1) per grid
// axis and share the mapping of those numbers to values (point_from_units).
#include "orchestrator/spec/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "orchestrator/spec/counter_rng.h"
#include "orchestrator/spec/job_identity.h"
#include "orchestrator/spec/sobol.h"

namespace sweep {
namespace {

using json = nlohmann::json;

json draw_value(const GridAxis& axis, const ParamSpec& spec, double u) {
  if (axis.draw == Draw::kChoice) {
    const size_t n = axis.values.size();
    return axis.values[std::min(static_cast<size_t>(u * static_cast<double>(n)), n - 1)];
  }
  double x = axis.low + u * (axis.high - axis.low);
  if (axis.draw == Draw::kLogUniform) {
    const double lo = std::log(axis.low), hi = std::log(axis.high);
    x = std::exp(lo + u * (hi - lo));
  }
  if (spec.type == ParamType::kInt) {
    // The reader checked that [ceil(low), floor(high)] holds an allowed integer.
    const double r = std::clamp(std::round(x), std::ceil(axis.low), std::floor(axis.high));
    return static_cast<long long>(r);
  }
  return std::clamp(round_significant(x, kSampleSignificantDigits), axis.low, axis.high);
}

// Both samplers: one unit draw per axis, mapped by point_from_units.
class UnitSampler : public Sampler {
 public:
  explicit UnitSampler(const SweepSpec& spec)
      : grid_(spec.grid), seed_(static_cast<uint64_t>(spec.search.seed)) {}

  json ask(int trial) override {
    std::vector<double> u(grid_.size());
    for (size_t d = 0; d < grid_.size(); ++d) u[d] = unit(trial, static_cast<int>(d));
    return point_from_units(grid_, u);
  }

 protected:
  virtual double unit(int trial, int dim) const = 0;

  std::vector<GridAxis> grid_;
  uint64_t seed_;
};

// Independent uniform draws: 64 hashed bits of (seed, trial, dimension) per value.
class RandomSampler : public UnitSampler {
 public:
  using UnitSampler::UnitSampler;

 protected:
  double unit(int trial, int dim) const override {
    return unit_interval(
        counter_bits(seed_, static_cast<uint64_t>(trial), static_cast<uint64_t>(dim)));
  }
};

// Scrambled Sobol points: the first 2^m trials cover every axis evenly (one trial in each
// 1/2^m of its range), where random draws leave gaps and clumps.
class SobolSampler : public UnitSampler {
 public:
  using UnitSampler::UnitSampler;

 protected:
  double unit(int trial, int dim) const override {
    const uint32_t x = scrambled_sobol_coordinate(static_cast<uint32_t>(trial), dim, seed_);
    return static_cast<double>(x) * (1.0 / 4294967296.0);  // 2^-32
  }
};

}  // namespace

double round_significant(double x, int digits) {
  if (x == 0 || !std::isfinite(x)) return x;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*e", digits - 1, x);
  return std::strtod(buf, nullptr);
}

json point_from_units(const std::vector<GridAxis>& grid, const std::vector<double>& u) {
  json point = json::object();
  for (size_t d = 0; d < grid.size(); ++d) {
    if (!grid[d].linked())
      point[grid[d].key] = draw_value(grid[d], *find_param_spec(grid[d].key), u[d]);
  }
  for (size_t d = 0; d < grid.size(); ++d) {
    const GridAxis& axis = grid[d];
    if (!axis.linked()) continue;
    const ParamSpec& spec = *find_param_spec(axis.key);
    const double k = draw_value(axis, spec, u[d]).get<double>();
    point[axis.key] = normalise_param_value(spec, k * point.at(axis.times).get<double>());
  }
  return point;
}

std::unique_ptr<Sampler> make_sampler(const SweepSpec& spec) {
  switch (spec.search.type) {
    case SearchSpec::Type::kRandom:
      return std::make_unique<RandomSampler>(spec);
    case SearchSpec::Type::kSobol:
      return std::make_unique<SobolSampler>(spec);
    case SearchSpec::Type::kGrid:
      break;
  }
  return nullptr;
}

}  // namespace sweep
