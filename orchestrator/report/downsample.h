// Curves thinned for display: a report draws a bounded number of points per curve whatever the
// length of the run (the raw rows stay in the database for `sweep query`).
#pragma once

#include <cstddef>
#include <vector>

namespace sweep::report {

struct Curve {
  std::vector<double> x;  // tokens seen (or step when a worker does not count tokens)
  std::vector<double> y;  // NaN where the value was not finite
};

// At most `max_points` points (>= 2): the first and last points as they are, the ones between
// averaged in equal runs of consecutive points (NaN values are left out of a run's mean; a run of
// only NaN keeps NaN, so a divergence stays visible). A curve that fits is returned unchanged.
Curve downsample(const Curve& curve, size_t max_points);

}  // namespace sweep::report
