// The language-model loss: token cross-entropy with the one-position shift (logits at t predict
// the label at t + 1), in fp32 (fp64 for fp64 logits), over labels != kIgnoreIndex. Training and
// evaluation both use these functions, so a validation loss is the training loss of the same
// tokens.
//
// The supervised-only path computes the same loss without a (B, T, V) tensor: supervised_positions
// picks the N positions whose next label is supervised, the model computes logits (N, V) there
// only (LlavaForConditionalGeneration::loss), and token_losses scores them.
//
// Shapes: B batch, T positions, V vocabulary, N supervised positions.
#pragma once

#include <cstdint>
#include <utility>

#include <torch/types.h>

namespace sweep::model {

// The next-token pairs: logits (B, T-1, V) upcast to fp32 (fp64 stays fp64) and labels (B, T-1)
// on the logits' device; position t of each is a prediction and its target.
struct NextTokenTargets {
  torch::Tensor logits;
  torch::Tensor labels;
};
NextTokenTargets shift_for_next_token(const torch::Tensor& logits, const torch::Tensor& labels);

// (sum of token losses, number of supervised tokens) over the whole batch. With one sample per
// call it is that sample's loss, whatever it was batched with (padding is unsupervised).
std::pair<torch::Tensor, int64_t> causal_lm_loss_sum(const torch::Tensor& logits,
                                                     const torch::Tensor& labels);

// Mean over supervised tokens; 0 (with a graph) when nothing is supervised.
torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels);

// The positions t whose label at t + 1 is supervised (!= kIgnoreIndex), in row-major order.
struct SupervisedPositions {
  torch::Tensor rows;     // (N) int64, flat index b * T + t into a (B * T, ...) view
  torch::Tensor samples;  // (N) int64, b of each row
  torch::Tensor targets;  // (N) int64, the label at t + 1
  int64_t count = 0;      // N
};
// labels (B, T) -> positions on the labels' device.
SupervisedPositions supervised_positions(const torch::Tensor& labels);

// Per-token cross-entropy (N) in fp32 (fp64 for fp64 logits) of logits (N, V) against targets (N).
// With N = 0 the sum is 0 and still has a graph to the logits.
torch::Tensor token_losses(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace sweep::model
