// SWEEP_HAVE_FUSED_ATTENTION: 1 when this LibTorch has at::scaled_dot_product_attention with an
// explicit scale (2.1 and later), whose flash and memory-efficient kernels never hold the
// [batch, heads, queries, keys] score tensor. Older LibTorch (Debian's 1.13) uses the explicit
// matmul-softmax-matmul path, which is also kept for double precision (the golden tests).
#pragma once

#include <cstdlib>
#include <cstring>

#include <torch/version.h>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#include <ATen/ops/scaled_dot_product_attention.h>
#define SWEEP_HAVE_FUSED_ATTENTION 1
#else
#define SWEEP_HAVE_FUSED_ATTENTION 0
#endif

namespace sweep::model {

// Whether the fused kernels are used where compiled in: the environment variable
// SWEEP_FUSED_ATTENTION=0 selects the explicit path (to compare the two, or to rule the fused
// kernels out when chasing a numerical difference). Read once per process.
inline bool fused_attention_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("SWEEP_FUSED_ATTENTION");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return enabled;
}

}  // namespace sweep::model
