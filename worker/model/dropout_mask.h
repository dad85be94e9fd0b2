// LoRA dropout's mask, drawn fast and reproducibly. A mask element is 1 / (1 - p) with
// probability 1 - p and 0 otherwise, as `F::dropout` scales it; the elements come from a
// counter-based generator (splitmix64 of a key and the element's index) whose key is one draw
// from the job's CPU generator. So one mask costs one draw from that generator however large it
// is, the same generator state gives the same mask on any number of threads, and restoring the
// state (activation checkpointing, resume) replays it. LibTorch's `bernoulli_(1 - p, generator)`
// draws one double per element serially, which was 30 % of a demo training step.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace sweep::model {

// A mask of `shape` for dropout probability p in (0, 1), in `options`' dtype (float or double,
// on the CPU), keyed by one 64-bit draw from `generator` (a CPUGeneratorImpl).
torch::Tensor dropout_mask(at::IntArrayRef shape, double p, const at::Generator& generator,
                           const torch::TensorOptions& options);

}  // namespace sweep::model
