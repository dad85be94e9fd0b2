// A counter-based random generator for search sampling: every draw is a pure function of
// (seed, trial, dimension), the same on every machine and compiler, with no state to carry
// between trials. (std:: distributions are implementation-defined, so they are not used.)
#pragma once

#include <cstdint>

namespace sweep {

// SplitMix64's finaliser: a bijective 64-bit mix whose output bits each depend on every input bit.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// 64 random bits for one (seed, trial, dimension). Chained rather than XORed together, so that
// swapping trial and dimension gives a different draw.
inline uint64_t counter_bits(uint64_t seed, uint64_t trial, uint64_t dimension) {
  return splitmix64(splitmix64(splitmix64(seed) ^ trial) ^ dimension);
}

// The top 53 bits as a double in [0, 1): exact, so the same on every IEEE machine.
inline double unit_interval(uint64_t bits) {
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
}

}  // namespace sweep
