// Splicing: how one micro-batch of token lists and images becomes the decoder's input (LLaVA's
// prepare_inputs_labels_for_multimodal, then right padding).
// `LlavaForConditionalGeneration::splice` runs the steps below in order for each sample:
//
//   check_sample -> embed_text -> place_image_features -> truncate   (per sample)
//   pad_batch                                                         (whole batch)
//
// Shapes: B batch, L one sample's length, T padded length, H text width, P image tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <torch/nn/modules/embedding.h>
#include <torch/types.h>

#include "data/special_tokens.h"

namespace sweep::model {

using data::kIgnoreIndex;
using data::kImageTokenIndex;

// One micro-batch before the image features are spliced in.
struct MultimodalInputs {
  std::vector<std::vector<int64_t>> input_ids;  // per sample; kImageTokenIndex at most once
  std::vector<std::vector<int64_t>> labels;     // same lengths; kIgnoreIndex where unsupervised
  torch::Tensor pixel_values;                   // [B, 3, S, S] float (zeros for text-only samples)
  std::vector<bool> has_image;
  // Optional (Ni, P, Dv): the vision tower's hidden state of each sample with has_image, in batch
  // order (LlavaForConditionalGeneration::vision_hidden, e.g. from a feature cache). When
  // defined, splice projects it and does not run the vision tower on pixel_values.
  torch::Tensor image_hidden;
};

// Ready for the decoder: right-padded, truncated to max_length.
struct SplicedBatch {
  torch::Tensor inputs_embeds;   // [B, T, H] in the base dtype
  torch::Tensor attention_mask;  // [B, T] bool, true on real tokens
  torch::Tensor labels;          // [B, T] int64, kIgnoreIndex on image span and padding
  torch::Tensor position_ids;    // [B, T] int64, 0..len-1 then 0 on padding
};

// One sample between the steps.
struct SampleSequence {
  torch::Tensor embeds;  // (L, H) in the embedding dtype, on the embedding's device
  torch::Tensor labels;  // (L) int64 on the CPU
};

// Throws std::runtime_error naming sample `index` when ids and labels differ in length, when it
// has more than one placeholder, a placeholder but no image, or an id outside [0, vocab_size).
void check_sample(const std::vector<int64_t>& ids, const std::vector<int64_t>& labels,
                  bool has_image, size_t index, int64_t vocab_size);

// Index of the image placeholder in `ids`, if there is one (check_sample allows at most one).
std::optional<int64_t> image_placeholder_position(const std::vector<int64_t>& ids);

// The sample's text tokens through `embed`, with their labels; a placeholder is left out (its
// features are placed by the next step). ids must have passed check_sample.
SampleSequence embed_text(torch::nn::Embedding& embed, const std::vector<int64_t>& ids,
                          const std::vector<int64_t>& labels);

// `features` (P, H) inserted before text position `at` (the placeholder's index in the ids), with
// labels kIgnoreIndex: (L, H) -> (L + P, H).
SampleSequence place_image_features(const SampleSequence& text, int64_t at,
                                    const torch::Tensor& features);

// The first `max_length` positions; max_length <= 0 keeps all.
SampleSequence truncate(const SampleSequence& s, int64_t max_length);

// Right-pads every sample to the longest (T >= 1): zero embeddings, kIgnoreIndex labels, mask
// false and position 0 on padding. Labels, mask and positions are moved to `device`.
SplicedBatch pad_batch(const std::vector<SampleSequence>& samples, torch::Device device);

}  // namespace sweep::model
