// Which samples of a validation set an evaluation scores when it is limited to `max_samples`.
// The draw depends only on (n, max_samples, seed) and is the same with every compiler and standard
// library: std::mt19937_64 is fixed by the standard, while std::uniform_int_distribution and
// std::shuffle are not, so the integer mapping and the shuffle are written out here.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace sweep::train {

// Uniform in [0, n), n > 0: draws at or above the largest multiple of n that fits in 64 bits are
// rejected, so there is no modulo bias.
inline uint64_t uniform_below(std::mt19937_64& engine, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x = engine();
  while (x >= limit) x = engine();
  return x % n;
}

// Indices 0..n-1 when max_samples <= 0 or >= n. Otherwise `max_samples` distinct indices in
// increasing order: the first max_samples of a Fisher-Yates shuffle of 0..n-1 (from the last
// position down, each swapped with uniform_below(i + 1)) driven by std::mt19937_64(seed).
inline std::vector<size_t> eval_subset(size_t n, int max_samples, uint64_t seed) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  if (max_samples <= 0 || static_cast<size_t>(max_samples) >= n) return idx;
  std::mt19937_64 engine(seed);
  for (size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[uniform_below(engine, i)]);
  idx.resize(static_cast<size_t>(max_samples));
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace sweep::train
