// Shapes: B batch, T positions, V vocabulary, N supervised positions.
#include "worker/model/causal_lm_loss.h"

#include <algorithm>

#include <torch/nn/functional/loss.h>

#include "data/special_tokens.h"

namespace sweep::model {

NextTokenTargets shift_for_next_token(const torch::Tensor& logits, const torch::Tensor& labels) {
  const auto dtype = logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  NextTokenTargets out;
  out.logits = logits.slice(1, 0, -1).to(dtype);        // (B, T-1, V)
  out.labels = labels.slice(1, 1).to(logits.device());  // (B, T-1)
  return out;
}

std::pair<torch::Tensor, int64_t> causal_lm_loss_sum(const torch::Tensor& logits,
                                                     const torch::Tensor& labels) {
  namespace F = torch::nn::functional;
  const NextTokenTargets next = shift_for_next_token(logits, labels);
  const int64_t V = logits.size(-1);
  const torch::Tensor flat_logits = next.logits.reshape({-1, V});  // (B*(T-1), V)
  const torch::Tensor flat_labels = next.labels.reshape({-1});     // (B*(T-1))
  const int64_t count = flat_labels.ne(data::kIgnoreIndex).sum().item<int64_t>();
  torch::Tensor sum = F::cross_entropy(
      flat_logits, flat_labels,
      F::CrossEntropyFuncOptions().ignore_index(data::kIgnoreIndex).reduction(torch::kSum));
  return {sum, count};
}

torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  auto [sum, count] = causal_lm_loss_sum(logits, labels);
  return sum / static_cast<double>(std::max<int64_t>(count, 1));
}

SupervisedPositions supervised_positions(const torch::Tensor& labels) {
  const int64_t T = labels.size(1);
  const torch::Tensor next = labels.slice(1, 1);                   // (B, T-1)
  const torch::Tensor bt = next.ne(data::kIgnoreIndex).nonzero();  // (N, 2): b, t
  SupervisedPositions at;
  at.samples = bt.select(1, 0).contiguous();                                                // (N)
  at.rows = at.samples * T + bt.select(1, 1);                                               // (N)
  at.targets = next.reshape({-1}).index_select(0, at.samples * (T - 1) + bt.select(1, 1));  // (N)
  at.count = bt.size(0);
  return at;
}

torch::Tensor token_losses(const torch::Tensor& logits, const torch::Tensor& targets) {
  namespace F = torch::nn::functional;
  const auto dtype = logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  return F::cross_entropy(logits.to(dtype), targets.to(logits.device()),
                          F::CrossEntropyFuncOptions().reduction(torch::kNone));  // (N)
}

}  // namespace sweep::model
