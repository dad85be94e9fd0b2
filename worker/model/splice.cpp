// Shapes: L one sample's length, T padded length, H text width, P image tokens.
#include "worker/model/splice.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace sweep::model {
namespace {

std::runtime_error sample_error(size_t index, const std::string& what) {
  return std::runtime_error("splice: sample " + std::to_string(index) + " " + what);
}

}  // namespace

void check_sample(const std::vector<int64_t>& ids, const std::vector<int64_t>& labels,
                  bool has_image, size_t index, int64_t vocab_size) {
  if (ids.size() != labels.size()) {
    throw sample_error(index, "has " + std::to_string(ids.size()) + " ids but " +
                                  std::to_string(labels.size()) + " labels");
  }
  const int64_t placeholders = data::count_image_placeholders(ids);
  if (placeholders > 1) throw sample_error(index, "has more than one image placeholder");
  if (placeholders == 1 && !has_image) {
    throw sample_error(index, "has an image placeholder but no image");
  }
  for (int64_t id : ids) {
    if (id != kImageTokenIndex && (id < 0 || id >= vocab_size)) {
      throw sample_error(index, "has token id " + std::to_string(id) +
                                    " outside the vocabulary [0, " + std::to_string(vocab_size) +
                                    ")");
    }
  }
}

std::optional<int64_t> image_placeholder_position(const std::vector<int64_t>& ids) {
  const auto it = std::find(ids.begin(), ids.end(), kImageTokenIndex);
  if (it == ids.end()) return std::nullopt;
  return static_cast<int64_t>(it - ids.begin());
}

SampleSequence embed_text(torch::nn::Embedding& embed, const std::vector<int64_t>& ids,
                          const std::vector<int64_t>& labels) {
  std::vector<int64_t> text_ids, text_labels;
  for (size_t t = 0; t < ids.size(); ++t) {
    if (ids[t] == kImageTokenIndex) continue;
    text_ids.push_back(ids[t]);
    text_labels.push_back(labels[t]);
  }
  SampleSequence out;
  if (text_ids.empty()) {
    out.embeds = torch::zeros({0, embed->weight.size(1)}, embed->weight.options());  // (0, H)
    out.labels = torch::zeros({0}, torch::kInt64);                                   // (0)
    return out;
  }
  // An embedding lookup is a row gather, so one lookup over all text equals LLaVA's lookup per
  // chunk between placeholders.
  torch::Tensor ids_t = torch::tensor(text_ids, torch::kInt64).to(embed->weight.device());
  out.embeds = embed->forward(ids_t);                      // (L, H)
  out.labels = torch::tensor(text_labels, torch::kInt64);  // (L)
  return out;
}

SampleSequence place_image_features(const SampleSequence& text, int64_t at,
                                    const torch::Tensor& features) {
  const int64_t P = features.size(0);
  SampleSequence out;
  out.embeds = torch::cat({text.embeds.slice(0, 0, at), features, text.embeds.slice(0, at)},
                          0);  // (L + P, H)
  out.labels = torch::cat({text.labels.slice(0, 0, at),
                           torch::full({P}, kIgnoreIndex, torch::kInt64), text.labels.slice(0, at)},
                          0);  // (L + P)
  return out;
}

SampleSequence truncate(const SampleSequence& s, int64_t max_length) {
  if (max_length <= 0 || s.embeds.size(0) <= max_length) return s;
  return {s.embeds.slice(0, 0, max_length), s.labels.slice(0, 0, max_length)};  // (max_length, H)
}

SplicedBatch pad_batch(const std::vector<SampleSequence>& samples, torch::Device device) {
  int64_t T = 1;
  for (const SampleSequence& s : samples) T = std::max(T, s.embeds.size(0));
  std::vector<torch::Tensor> embeds, labels, masks, positions;
  for (const SampleSequence& s : samples) {
    const int64_t len = s.embeds.size(0), pad = T - len, H = s.embeds.size(1);
    embeds.push_back(torch::cat({s.embeds, torch::zeros({pad, H}, s.embeds.options())}, 0));
    labels.push_back(torch::cat({s.labels, torch::full({pad}, kIgnoreIndex, torch::kInt64)}, 0));
    torch::Tensor mask = torch::zeros({T}, torch::kBool);  // (T)
    mask.slice(0, 0, len).fill_(true);
    masks.push_back(mask);
    torch::Tensor pos = torch::zeros({T}, torch::kInt64);  // (T)
    pos.slice(0, 0, len).copy_(torch::arange(len, torch::kInt64));
    positions.push_back(pos);
  }
  SplicedBatch out;
  out.inputs_embeds = torch::stack(embeds, 0);               // (B, T, H)
  out.labels = torch::stack(labels, 0).to(device);           // (B, T)
  out.attention_mask = torch::stack(masks, 0).to(device);    // (B, T)
  out.position_ids = torch::stack(positions, 0).to(device);  // (B, T)
  return out;
}

}  // namespace sweep::model
