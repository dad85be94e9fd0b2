// The two special values of LLaVA's token sequences and the label-masking rules built on them,
// shared by the data layer (tokenising, checks) and the model (splicing, loss). LibTorch-free.
//
//   input_ids: text token ids, with kImageTokenIndex where the image features go (LLaVA's
//              IMAGE_TOKEN_INDEX; at most one per sample; never a real vocabulary id).
//   labels:    same length; the token to predict, or kIgnoreIndex where nothing is supervised
//              (instructions, BOS, the image span, padding). The loss skips kIgnoreIndex.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace sweep::data {

constexpr int64_t kImageTokenIndex = -200;  // placeholder id in input_ids
constexpr int64_t kIgnoreIndex = -100;      // label of unsupervised positions (PyTorch's default)

inline bool is_supervised(int64_t label) { return label != kIgnoreIndex; }

inline int64_t count_supervised(const std::vector<int64_t>& labels) {
  return std::count_if(labels.begin(), labels.end(), is_supervised);
}

inline int64_t count_image_placeholders(const std::vector<int64_t>& input_ids) {
  return std::count(input_ids.begin(), input_ids.end(), kImageTokenIndex);
}

// labels[begin:end] = kIgnoreIndex with Python's slice clamping (LLaVA's preprocess masks so).
inline void mask_labels(std::vector<int64_t>* labels, int64_t begin, int64_t end) {
  const auto n = static_cast<int64_t>(labels->size());
  begin = std::clamp<int64_t>(begin, 0, n);
  end = std::clamp<int64_t>(end, 0, n);
  std::fill(labels->begin() + begin, labels->begin() + std::max(begin, end), kIgnoreIndex);
}

// Labels for `n` positions of which none is supervised (a prompt, an image span).
inline std::vector<int64_t> unsupervised_labels(size_t n) {
  return std::vector<int64_t>(n, kIgnoreIndex);
}

}  // namespace sweep::data
