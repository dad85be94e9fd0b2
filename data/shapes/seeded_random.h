// A random source whose every draw is the same on every standard library: std::mt19937_64 is
// fully specified by the standard, but std:: distributions are not, so the integer mapping here
// is our own (rejection sampling, no modulo bias).
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace sweep::data {

class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}

  // Uniform in [0, n); n > 0.
  uint64_t below(uint64_t n) {
    // Largest multiple of n that fits; draws at or above it are rejected to avoid bias.
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x = engine_();
    while (x >= limit) x = engine_();
    return x % n;
  }

  // Uniform in [lo, hi]; lo <= hi.
  int between(int lo, int hi) {
    return lo + static_cast<int>(below(static_cast<uint64_t>(hi - lo) + 1));
  }

  // True with probability num/den.
  bool chance(uint64_t num, uint64_t den) { return below(den) < num; }

  // Fisher-Yates with the mapping above.
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace sweep::data
