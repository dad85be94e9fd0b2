// LLaVA (transformers' LlavaForConditionalGeneration): CLIP vision tower -> mlp2x_gelu projector ->
// LLaMA decoder. Submodules carry the llava-hf names, so `named_parameters()` yields exactly the
// tensor names of a llava-hf `model.safetensors` (vision_tower.*, multi_modal_projector.*,
// language_model.model.*, language_model.lm_head.weight).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "worker/model/causal_lm_loss.h"
#include "worker/model/clip_vision.h"
#include "worker/model/llama.h"
#include "worker/model/llava_config.h"
#include "worker/model/projector.h"
#include "worker/model/splice.h"  // MultimodalInputs, SplicedBatch, kImageTokenIndex, kIgnoreIndex

namespace sweep::model {

class LlavaForConditionalGenerationImpl : public torch::nn::Module {
 public:
  // Builds the architecture with deterministic random weights (normal(0, 0.02) for projections
  // and embeddings, ones/zeros for norms), all fp32 on the CPU.
  explicit LlavaForConditionalGenerationImpl(const LlavaConfig& config, uint64_t seed = 0);

  // Re-draws every weight from `seed` (the init-model weights).
  void init_weights(uint64_t seed);
  // Frozen parts (vision tower, language model base weights) to `base_dtype`; the projector and
  // LoRA adapters stay fp32 (double if base_dtype is double). Everything moves to `device`.
  void to_precision(torch::Dtype base_dtype, torch::Device device);
  torch::Dtype base_dtype() const;
  torch::Device device() const;

  // [N,3,S,S] -> [N, P, H_text]: project_image_hidden(vision_hidden(pixel_values)).
  torch::Tensor image_features(const torch::Tensor& pixel_values);
  // [N,3,S,S] -> [N, P, Dv]: CLIP hidden state `vision_feature_layer`, CLS dropped with the
  // "default" strategy, in the vision tower's dtype: what goes into the projector. It depends on
  // the vision tower's weights and the pixels only, so a frozen tower's result can be cached.
  torch::Tensor vision_hidden(const torch::Tensor& pixel_values);
  // [N, P, Dv] -> [N, P, H_text]: the projector, result in the base dtype.
  torch::Tensor project_image_hidden(const torch::Tensor& hidden);
  // LLaVA's prepare_inputs_labels_for_multimodal + right padding (max_length <= 0: no truncation);
  // each kImageTokenIndex is replaced by the sample's image features (labels kIgnoreIndex there).
  // The steps are in splice.h. Throws on a placeholder in a sample without an image, on more than
  // one placeholder, on an id outside the vocabulary or on label/id length mismatch.
  SplicedBatch splice(const MultimodalInputs& in, int64_t max_length);
  torch::Tensor forward(const SplicedBatch& b);  // logits [B, T, V] in the base dtype
  // forward(b).reshape({B*T, V}).index_select(0, rows) -> [N, V], without computing the rest: the
  // last decoder layer, the final norm and lm_head run only at `rows` (flat b * T + t).
  torch::Tensor logits_at(const SplicedBatch& b, const torch::Tensor& rows);
  // causal_lm_loss(forward(b), b.labels) (same value and gradients) with logits computed only at
  // the supervised positions: mean over supervised tokens, 0 with a graph when there are none.
  torch::Tensor loss(const SplicedBatch& b);

  // Greedy decoding with a KV cache; prompt_ids may contain one kImageTokenIndex. Returns only the
  // new tokens; stops after eos (eos excluded) or after max_new_tokens. Runs under NoGradGuard.
  // A defined `image_hidden` ([P, Dv], the image's vision_hidden) is used instead of the pixels.
  std::vector<int64_t> generate(const std::vector<int64_t>& prompt_ids,
                                const torch::Tensor& pixel_values /*[3,S,S] or undefined*/,
                                int64_t max_new_tokens, int64_t eos_id,
                                const torch::Tensor& image_hidden = {});

  // generate() for a batch: the greedy answer of each sample of `in` (labels are not read; a
  // sample with has_image takes its image from in.image_hidden or in.pixel_values as splice
  // does). The prompts are right-padded into one prefill; every decoding step then runs all
  // unfinished samples at once, each at its own position, the padding masked out of attention.
  // The same answers as generate() sample by sample, up to the rounding of batched products.
  std::vector<std::vector<int64_t>> generate_batch(const MultimodalInputs& in,
                                                   int64_t max_new_tokens, int64_t eos_id);

  const LlavaConfig& config() const { return config_; }

  ClipVisionModel vision_tower{nullptr};
  MultiModalProjector multi_modal_projector{nullptr};
  LlamaForCausalLM language_model{nullptr};

 private:
  // (Ni, P, H): image_features of the samples with has_image, in batch order; undefined when none.
  torch::Tensor features_of_images(const MultimodalInputs& in);

  LlavaConfig config_;
};
TORCH_MODULE(LlavaForConditionalGeneration);

// The architecture with uninitialised weights already in their final dtype and on `device` (frozen
// parts in base_dtype, the projector in full precision), for a loader to fill: no random draw and
// no fp32 host copy of the model (worker/model/parameter_placement.h).
LlavaForConditionalGeneration empty_llava(const LlavaConfig& config, torch::Dtype base_dtype,
                                          torch::Device device);

// Parameter counts per part (vision, projector, language model, LoRA) and how many train.
std::string model_summary(LlavaForConditionalGeneration& m);

}  // namespace sweep::model
