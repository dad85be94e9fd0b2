#include "orchestrator/report/downsample.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sweep::report {

Curve downsample(const Curve& curve, size_t max_points) {
  const size_t n = std::min(curve.x.size(), curve.y.size());
  max_points = std::max<size_t>(max_points, 2);
  if (n <= max_points) return curve;
  Curve out;
  out.x.reserve(max_points);
  out.y.reserve(max_points);
  out.x.push_back(curve.x[0]);
  out.y.push_back(curve.y[0]);
  // The inner points [1, n-1) fall into max_points - 2 runs of (almost) equal length.
  const size_t inner = n - 2, runs = max_points - 2;
  for (size_t r = 0; r < runs; ++r) {
    const size_t begin = 1 + r * inner / runs, end = 1 + (r + 1) * inner / runs;
    double sx = 0, sy = 0;
    size_t finite = 0;
    for (size_t i = begin; i < end; ++i) {
      sx += curve.x[i];
      if (std::isfinite(curve.y[i])) {
        sy += curve.y[i];
        ++finite;
      }
    }
    if (end == begin) continue;
    out.x.push_back(sx / static_cast<double>(end - begin));
    out.y.push_back(finite ? sy / static_cast<double>(finite)
                           : std::numeric_limits<double>::quiet_NaN());
  }
  out.x.push_back(curve.x[n - 1]);
  out.y.push_back(curve.y[n - 1]);
  return out;
}

}  // namespace sweep::report
