// Activation (gradient) checkpointing for LibTorch, as PyTorch's reentrant
// torch.utils.checkpoint: the wrapped block's forward builds no graph and keeps only its input;
// backward runs the block again with gradients on and backpropagates through that recomputed
// graph. Saves the block's intermediate activations for one extra forward of the block.
#pragma once

#include <functional>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace sweep::model {

// The wrapped block: output = fn(x, extras). It must compute the same thing when called again:
// a function of x, extras, the parameters it reads and the random numbers it draws (dropout).
using CheckpointedFn =
    std::function<torch::Tensor(const torch::Tensor& x, const std::vector<torch::Tensor>& extras)>;

// fn(x, extras), checkpointed when grad mode is on; with grad mode off, fn is called directly.
// Gradients: x gets its own through the returned tensor. The parameters fn reads that require
// grad get theirs accumulated into .grad during backward (as PyTorch's reentrant checkpoint does;
// torch::autograd::grad with explicit inputs does not see them). Extras are passed detached and
// get no gradient: position tables and masks, not activations. Undefined extras stay undefined.
// Random numbers: the default generators of the CPU and of x's device (when not the CPU) are
// saved at the forward and restored for the recomputation, so dropout draws the same masks; after
// backward they are back where they were before it. `generators` are treated the same way (the
// LoRA adapters' own dropout generators).
// fn is copied and kept with the graph until the graph is freed.
torch::Tensor activation_checkpoint(const CheckpointedFn& fn, const torch::Tensor& x,
                                    const std::vector<torch::Tensor>& extras = {},
                                    const std::vector<at::Generator>& generators = {});

}  // namespace sweep::model
