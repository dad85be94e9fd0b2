// Packing: several jobs' LoRA adapters trained in one process on one frozen base model.
//
// The base model holds the frozen weights. Each job has its own model built by share_frozen: its
// frozen tensors are the base's (the same storage, no copy), its adapters (and its projector when
// the job trains one) are its own, so each job's optimizer, checkpoints and evaluation work on it
// exactly as on a model of its own. LanguagePack::losses runs the base's language model once over
// the micro-batches of all jobs, concatenated along the batch: every frozen projection is one
// GEMM over all the rows, and each targeted projection adds each job's adapter term to that job's
// rows only (LoraLinear's PackRoute). Rows of different jobs never meet (attention, norms and the
// MLP act within a sample), so each job's loss and gradients are those of its own model, up to
// float rounding.
//
// Shapes: B_i samples of job i, T_i its padded length, T = max T_i, H text width, N_i its
// supervised positions.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "worker/model/llava.h"

namespace sweep::model {

// A model of base's architecture whose frozen tensors are base's own; its projector is a copy
// when `own_projector` (the job trains it), else shared too. No adapters yet (apply_lora or
// load_adapter next). `base` must not carry adapters.
LlavaForConditionalGeneration share_frozen(LlavaForConditionalGeneration& base, bool own_projector);

class LanguagePack {
 public:
  // `members` are share_frozen models of `base` with adapters on the same modules (equal
  // target_modules; ranks may differ). Routes every targeted module of base to the members'.
  LanguagePack(LlavaForConditionalGeneration base,
               std::vector<LlavaForConditionalGeneration> members);
  ~LanguagePack();
  LanguagePack(const LanguagePack&) = delete;
  LanguagePack& operator=(const LanguagePack&) = delete;

  // One loss per batch: the mean over batches[i]'s supervised tokens under the adapters of
  // members[active[i]] (0 with a graph when none), computed in one pass of the base over the
  // batches right-padded to T and concatenated ([sum B_i, T, H]). batches[i] is spliced by that
  // member's own model. The route stays in place until the next call, so that a backward through
  // checkpointed layers recomputes them with the same routing.
  std::vector<torch::Tensor> losses(const std::vector<size_t>& active,
                                    const std::vector<SplicedBatch>& batches);

  LlavaForConditionalGeneration& base() { return base_; }
  size_t size() const { return members_.size(); }

 private:
  LlavaForConditionalGeneration base_;
  std::vector<LlavaForConditionalGeneration> members_;
  std::vector<LoraLinearImpl*> routed_;  // base modules that carry a route
  std::unique_ptr<PackRoute> route_;     // shared by routed_; stable address
};

// `batches` right-padded to the longest and concatenated along the batch (pad_batch's padding:
// zero embeddings, mask false, labels kIgnoreIndex, position 0).
SplicedBatch concat_batches(const std::vector<SplicedBatch>& batches);

}  // namespace sweep::model
