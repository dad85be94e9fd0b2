// The Sobol low-discrepancy sequence (Joe and Kuo's 2008 direction numbers), plain and
// scrambled. The first 2^m points of either are a (t, m, s)-net: in particular each
// one-dimensional projection puts exactly one point in each interval [k/2^m, (k+1)/2^m).
// Coordinates are 32-bit fractions (x / 2^32), points are numbered in Gray-code order, the usual
// order (point 0 is the origin; then 0.5, then (0.75, 0.25, ...)), and any point is computed on
// its own, so the sequence is the same however many points are asked for.
#pragma once

#include <cstdint>

namespace sweep {

// Dimensions with direction numbers: one per swept key, so a sobol search space has at most
// this many keys.
constexpr int kSobolMaxDimensions = 32;

// Coordinate `dim` (0-based, < kSobolMaxDimensions) of point `index`, unscrambled.
uint32_t sobol_coordinate(uint32_t index, int dim);

// The same coordinate after a nested uniform (Owen-style) scramble keyed by `seed`: each bit is
// flipped by a pseudo-random function of the bits above it, different per dimension. This keeps
// the net property and makes the points an unbiased random sample of the cube; different seeds
// give independent point sets.
uint32_t scrambled_sobol_coordinate(uint32_t index, int dim, uint64_t seed);

}  // namespace sweep
