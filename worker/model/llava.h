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

#include "worker/model/clip_vision.h"
#include "worker/model/llama.h"
#include "worker/model/llava_config.h"
#include "worker/model/projector.h"

namespace sweep::model {

constexpr int64_t kImageTokenIndex = -200;  // placeholder id in input_ids (LLaVA's IMAGE_TOKEN_INDEX)
constexpr int64_t kIgnoreIndex = -100;      // label of unsupervised positions

// One micro-batch before the image features are spliced in.
struct MultimodalInputs {
  std::vector<std::vector<int64_t>> input_ids;  // per sample; kImageTokenIndex at most once
  std::vector<std::vector<int64_t>> labels;     // same lengths; kIgnoreIndex where unsupervised
  torch::Tensor pixel_values;                   // [B, 3, S, S] float (zeros for text-only samples)
  std::vector<bool> has_image;
};

// Ready for the decoder: right-padded, truncated to max_length.
struct SplicedBatch {
  torch::Tensor inputs_embeds;   // [B, T, H] in the base dtype
  torch::Tensor attention_mask;  // [B, T] bool, true on real tokens
  torch::Tensor labels;          // [B, T] int64, kIgnoreIndex on image span and padding
  torch::Tensor position_ids;    // [B, T] int64, 0..len-1 then 0 on padding
};

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

  // [N,3,S,S] -> [N, P, H_text]: CLIP hidden state `vision_feature_layer`, CLS dropped with the
  // "default" strategy, through the projector; result in the base dtype.
  torch::Tensor image_features(const torch::Tensor& pixel_values);
  // LLaVA's prepare_inputs_labels_for_multimodal + right padding (max_length <= 0: no truncation);
  // each kImageTokenIndex is replaced
  // by the sample's image features (labels kIgnoreIndex there). Throws on a placeholder in a
  // sample without an image, on more than one placeholder, or on label/id length mismatch.
  SplicedBatch splice(const MultimodalInputs& in, int64_t max_length);
  torch::Tensor forward(const SplicedBatch& b);  // logits [B, T, V] in the base dtype

  // Greedy decoding with a KV cache; prompt_ids may contain one kImageTokenIndex. Returns only the
  // new tokens; stops after eos (eos excluded) or after max_new_tokens. Runs under NoGradGuard.
  std::vector<int64_t> generate(const std::vector<int64_t>& prompt_ids,
                                const torch::Tensor& pixel_values /*[3,S,S] or undefined*/,
                                int64_t max_new_tokens, int64_t eos_id);

  const LlavaConfig& config() const { return config_; }

  ClipVisionModel vision_tower{nullptr};
  MultiModalProjector multi_modal_projector{nullptr};
  LlamaForCausalLM language_model{nullptr};

 private:
  LlavaConfig config_;
};
TORCH_MODULE(LlavaForConditionalGeneration);

// Mean token cross-entropy in fp32 with the one-position shift (logits[t] predicts labels[t+1]),
// over labels != kIgnoreIndex. Returns 0 (with a graph) when nothing is supervised.
torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels);
// Same loss as (sum over supervised tokens, number of supervised tokens), for evaluation.
std::pair<torch::Tensor, int64_t> causal_lm_loss_sum(const torch::Tensor& logits,
                                                     const torch::Tensor& labels);

// Parameter counts per part (vision, projector, language model, LoRA) and how many train.
std::string model_summary(LlavaForConditionalGeneration& m);

}  // namespace sweep::model
