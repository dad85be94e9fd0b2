// Sobol points from direction numbers, and their hash-based nested scramble.
#include "orchestrator/spec/sobol.h"

#include <array>

#include "orchestrator/spec/counter_rng.h"

namespace sweep {
namespace {

constexpr int kBits = 32;

// Dimensions 2 .. kSobolMaxDimensions of Joe and Kuo's new-joe-kuo-6.21201 table: the degree s
// of the primitive polynomial, its inner coefficients a (s-1 bits, highest first) and the
// initial direction numbers m_1 .. m_s. Dimension 1 is van der Corput (every m_k = 1).
struct Primitive {
  int s;
  uint32_t a;
  std::array<uint32_t, 7> m;
};
constexpr Primitive kPrimitives[kSobolMaxDimensions - 1] = {
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},
    {7, 7, {1, 1, 3, 13, 7, 35, 63}},
    {7, 8, {1, 3, 5, 9, 1, 25, 53}},
    {7, 14, {1, 3, 1, 13, 9, 35, 107}},
    {7, 19, {1, 3, 1, 5, 27, 61, 31}},
    {7, 21, {1, 1, 5, 11, 19, 41, 61}},
    {7, 28, {1, 3, 5, 3, 3, 13, 69}},
    {7, 31, {1, 1, 7, 13, 1, 19, 1}},
    {7, 32, {1, 3, 7, 5, 13, 19, 59}},
    {7, 37, {1, 1, 3, 9, 25, 29, 41}},
    {7, 41, {1, 3, 5, 13, 23, 1, 55}},
    {7, 42, {1, 3, 7, 3, 13, 59, 17}},
};

using Directions = std::array<std::array<uint32_t, kBits>, kSobolMaxDimensions>;

// v[d][k-1] = m_k * 2^(32-k): the bit pattern XORed in when bit k-1 of the Gray code is set.
// Beyond the initial m_k the recurrence of the primitive polynomial gives the rest.
Directions make_directions() {
  Directions v{};
  for (int k = 1; k <= kBits; ++k) v[0][k - 1] = 1u << (kBits - k);
  for (int d = 1; d < kSobolMaxDimensions; ++d) {
    const Primitive& p = kPrimitives[d - 1];
    for (int k = 1; k <= p.s; ++k) v[d][k - 1] = p.m[k - 1] << (kBits - k);
    for (int k = p.s + 1; k <= kBits; ++k) {
      uint32_t x = v[d][k - p.s - 1] ^ (v[d][k - p.s - 1] >> p.s);
      for (int j = 1; j < p.s; ++j)
        if ((p.a >> (p.s - 1 - j)) & 1u) x ^= v[d][k - j - 1];
      v[d][k - 1] = x;
    }
  }
  return v;
}

const Directions& directions() {
  static const Directions v = make_directions();
  return v;
}

uint32_t reverse_bits(uint32_t x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
  return (x >> 16) | (x << 16);
}

// With the bits reversed (the most significant fraction bit now lowest), every step below
// changes bit k only as a function of bits 0..k-1 and the key: adding a constant (carries move
// up), multiplying by an odd number, and x ^= x * even (the product's bit k depends on bits
// below k only). So in the original order each bit is flipped by a function of the bits above
// it: a nested uniform scramble, which maps each dyadic interval onto a dyadic interval of the
// same size and so keeps the net property.
uint32_t nested_scramble(uint32_t x, uint64_t key) {
  const uint32_t k0 = static_cast<uint32_t>(key);
  const uint32_t k1 = static_cast<uint32_t>(key >> 32);
  x = reverse_bits(x);
  x += k0;
  x ^= x * 0x9e3779b8u;
  x *= k1 | 1u;
  x ^= x * 0x2c1b3c6cu;
  x += k1;
  x ^= x * 0x297a2d38u;
  x *= 0x85ebca6bu;
  x ^= x * 0xc2b2ae34u;
  return reverse_bits(x);
}

}  // namespace

uint32_t sobol_coordinate(uint32_t index, int dim) {
  const std::array<uint32_t, kBits>& v = directions()[dim];
  const uint32_t gray = index ^ (index >> 1);
  uint32_t x = 0;
  for (int k = 0; k < kBits; ++k)
    if ((gray >> k) & 1u) x ^= v[k];
  return x;
}

uint32_t scrambled_sobol_coordinate(uint32_t index, int dim, uint64_t seed) {
  // Tag 0x50b01 keeps these keys apart from the random sampler's draws of the same seed.
  const uint64_t key = counter_bits(seed, 0x50b01, static_cast<uint64_t>(dim));
  return nested_scramble(sobol_coordinate(index, dim), key);
}

}  // namespace sweep
