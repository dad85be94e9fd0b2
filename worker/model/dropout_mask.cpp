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

// Elements [begin, end) of the mask; each 64-bit output gives two 32-bit uniforms, so element i
// reads half i % 2 of output i / 2, whichever thread fills it.
template <typename T>
void fill(T* out, int64_t begin, int64_t end, uint64_t key, uint64_t keep_below, T scale) {
  for (int64_t i = begin; i < end; ++i) {
    const uint64_t bits = mix64(key + kGamma * (uint64_t(i) / 2 + 1));
    const uint64_t u = (i % 2) ? bits >> 32 : bits & 0xffffffffULL;
    out[i] = u < keep_below ? scale : T(0);
  }
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
  auto run = [&](auto* out, auto scale) {
    at::parallel_for(0, n, /*grain_size=*/1 << 15, [&](int64_t begin, int64_t end) {
      fill(out, begin, end, key, keep_below, scale);
    });
  };
  if (mask.scalar_type() == torch::kFloat32)
    run(mask.data_ptr<float>(), float(1 / (1 - p)));
  else if (mask.scalar_type() == torch::kFloat64)
    run(mask.data_ptr<double>(), 1 / (1 - p));
  else
    throw std::invalid_argument("dropout_mask: the mask must be float or double");
  return mask;
}

}  // namespace sweep::model
