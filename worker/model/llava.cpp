// Shapes: B batch, T tokens after splicing, H text width, P image tokens per image, V vocab.
#include "worker/model/llava.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/loss.h>

namespace sweep::model {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_norm_weight(const std::string& name, const torch::Tensor& p) {
  return p.dim() == 1 && ends_with(name, ".weight") &&
         (name.find("norm") != std::string::npos || name.find("layrnorm") != std::string::npos);
}

// Parameters that stay in full precision: trained ones (projector, LoRA adapters).
bool keeps_full_precision(const std::string& name) {
  return name.rfind("multi_modal_projector.", 0) == 0 || name.find(".lora_") != std::string::npos;
}

}  // namespace

LlavaForConditionalGenerationImpl::LlavaForConditionalGenerationImpl(const LlavaConfig& config,
                                                                     uint64_t seed)
    : config_(config) {
  config_.validate();
  vision_tower = register_module("vision_tower", ClipVisionModel(config_.vision));
  multi_modal_projector = register_module(
      "multi_modal_projector",
      MultiModalProjector(config_.vision.hidden_size, config_.text.hidden_size,
                          config_.projector_hidden_act));
  language_model = register_module("language_model", LlamaForCausalLM(config_.text));
  init_weights(seed);
}

void LlavaForConditionalGenerationImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (name.find(".lora_") != std::string::npos) continue;  // adapters keep their PEFT init
    if (is_norm_weight(name, p)) {
      p.fill_(1.0);
    } else if (ends_with(name, ".bias")) {
      p.zero_();
    } else {
      auto draw = torch::empty(p.sizes(), torch::kFloat32);
      draw.normal_(0.0, 0.02, gen);
      p.copy_(draw);
    }
  }
}

void LlavaForConditionalGenerationImpl::to_precision(torch::Dtype base_dtype, torch::Device device) {
  torch::NoGradGuard no_grad;
  auto full = base_dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  for (auto& item : named_parameters()) {
    torch::Tensor& p = item.value();
    auto dtype = keeps_full_precision(item.key()) ? full : base_dtype;
    if (p.scalar_type() != dtype || p.device() != device) p.set_data(p.to(device, dtype));
  }
}

torch::Dtype LlavaForConditionalGenerationImpl::base_dtype() const {
  return language_model->lm_head->weight.scalar_type();
}

torch::Device LlavaForConditionalGenerationImpl::device() const {
  return language_model->lm_head->weight.device();
}

torch::Tensor LlavaForConditionalGenerationImpl::image_features(const torch::Tensor& pixel_values) {
  auto pixels = pixel_values.to(device());
  auto h = vision_tower->hidden_state(pixels, config_.vision_feature_layer);  // [N, P+1, Dv]
  if (config_.vision_feature_select_strategy == "default") h = h.slice(1, 1);  // drop CLS
  return multi_modal_projector->forward(h).to(base_dtype());                  // [N, P, H]
}

SplicedBatch LlavaForConditionalGenerationImpl::splice(const MultimodalInputs& in,
                                                       int64_t max_length) {
  size_t B = in.input_ids.size();
  if (in.labels.size() != B || in.has_image.size() != B)
    throw std::runtime_error("splice: input_ids, labels and has_image differ in batch size");
  // Features only for the samples that have an image; text-only samples contribute none (LLaVA
  // concatenates a zero-length slice of their dummy features).
  std::vector<int64_t> with_image;
  for (size_t i = 0; i < B; ++i)
    if (in.has_image[i]) with_image.push_back(int64_t(i));
  torch::Tensor feats;  // [Ni, P, H]
  if (!with_image.empty()) {
    if (!in.pixel_values.defined() || in.pixel_values.size(0) != int64_t(B))
      throw std::runtime_error("splice: pixel_values must be [B,3,S,S] when a sample has an image");
    auto idx = torch::tensor(with_image, torch::kInt64).to(in.pixel_values.device());
    feats = image_features(in.pixel_values.index_select(0, idx));
  }
  auto embed = language_model->model->embed_tokens;
  int64_t vocab = config_.text.vocab_size;
  auto dev = device();
  std::vector<torch::Tensor> embeds, labels;
  size_t image_i = 0;
  for (size_t b = 0; b < B; ++b) {
    const auto& ids = in.input_ids[b];
    const auto& lab = in.labels[b];
    if (ids.size() != lab.size())
      throw std::runtime_error("splice: sample " + std::to_string(b) + " has " +
                               std::to_string(ids.size()) + " ids but " +
                               std::to_string(lab.size()) + " labels");
    std::vector<torch::Tensor> e_parts, l_parts;
    size_t start = 0;
    int placeholders = 0;
    auto flush_text = [&](size_t end) {
      if (end <= start) return;
      std::vector<int64_t> chunk(ids.begin() + start, ids.begin() + end);
      for (int64_t id : chunk)
        if (id < 0 || id >= vocab)
          throw std::runtime_error("splice: sample " + std::to_string(b) + " has token id " +
                                   std::to_string(id) + " outside the vocabulary [0, " +
                                   std::to_string(vocab) + ")");
      e_parts.push_back(embed->forward(torch::tensor(chunk, torch::kInt64).to(dev)));
      l_parts.push_back(torch::tensor(std::vector<int64_t>(lab.begin() + start, lab.begin() + end),
                                      torch::kInt64));
    };
    for (size_t t = 0; t < ids.size(); ++t) {
      if (ids[t] != kImageTokenIndex) continue;
      if (++placeholders > 1)
        throw std::runtime_error("splice: sample " + std::to_string(b) + " has more than one image placeholder");
      if (!in.has_image[b])
        throw std::runtime_error("splice: sample " + std::to_string(b) + " has an image placeholder but no image");
      flush_text(t);
      auto f = feats[int64_t(image_i)];  // [P, H]
      e_parts.push_back(f);
      l_parts.push_back(torch::full({f.size(0)}, kIgnoreIndex, torch::kInt64));
      start = t + 1;
    }
    flush_text(ids.size());
    if (in.has_image[b]) ++image_i;
    if (e_parts.empty()) {
      e_parts.push_back(torch::zeros({0, config_.text.hidden_size}, embed->weight.options()));
      l_parts.push_back(torch::zeros({0}, torch::kInt64));
    }
    auto e = torch::cat(e_parts, 0);
    auto l = torch::cat(l_parts, 0);
    if (max_length > 0 && e.size(0) > max_length) {
      e = e.slice(0, 0, max_length);
      l = l.slice(0, 0, max_length);
    }
    embeds.push_back(e);
    labels.push_back(l);
  }
  int64_t T = 1;
  for (const auto& e : embeds) T = std::max(T, e.size(0));
  int64_t H = config_.text.hidden_size;
  std::vector<torch::Tensor> e_rows, l_rows, m_rows, p_rows;
  for (size_t b = 0; b < B; ++b) {
    int64_t len = embeds[b].size(0), pad = T - len;
    auto eo = embeds[b].options();
    e_rows.push_back(torch::cat({embeds[b], torch::zeros({pad, H}, eo)}, 0));
    l_rows.push_back(torch::cat({labels[b], torch::full({pad}, kIgnoreIndex, torch::kInt64)}, 0));
    auto mask = torch::zeros({T}, torch::kBool);
    mask.slice(0, 0, len).fill_(true);
    m_rows.push_back(mask);
    auto pos = torch::zeros({T}, torch::kInt64);
    pos.slice(0, 0, len).copy_(torch::arange(len, torch::kInt64));
    p_rows.push_back(pos);
  }
  SplicedBatch out;
  out.inputs_embeds = torch::stack(e_rows, 0);           // [B,T,H]
  out.labels = torch::stack(l_rows, 0).to(dev);          // [B,T]
  out.attention_mask = torch::stack(m_rows, 0).to(dev);  // [B,T]
  out.position_ids = torch::stack(p_rows, 0).to(dev);    // [B,T]
  return out;
}

torch::Tensor LlavaForConditionalGenerationImpl::forward(const SplicedBatch& b) {
  return language_model->forward(b.inputs_embeds, b.position_ids, b.attention_mask);  // [B,T,V]
}

std::vector<int64_t> LlavaForConditionalGenerationImpl::generate(
    const std::vector<int64_t>& prompt_ids, const torch::Tensor& pixel_values,
    int64_t max_new_tokens, int64_t eos_id) {
  torch::NoGradGuard no_grad;
  bool was_training = is_training();
  eval();
  MultimodalInputs in;
  in.input_ids = {prompt_ids};
  in.labels = {std::vector<int64_t>(prompt_ids.size(), kIgnoreIndex)};
  bool image = pixel_values.defined() &&
               std::count(prompt_ids.begin(), prompt_ids.end(), kImageTokenIndex) > 0;
  in.has_image = {image};
  if (image) in.pixel_values = pixel_values.unsqueeze(0);
  SplicedBatch b = splice(in, /*max_length=*/0);
  KvCache cache;
  auto logits = language_model->forward(b.inputs_embeds, b.position_ids, torch::Tensor(), &cache);
  int64_t next_pos = b.inputs_embeds.size(1);
  std::vector<int64_t> out;
  while (int64_t(out.size()) < max_new_tokens) {
    int64_t next = logits.select(1, logits.size(1) - 1).argmax(-1).item<int64_t>();
    if (next == eos_id) break;
    out.push_back(next);
    if (int64_t(out.size()) == max_new_tokens) break;
    auto ids = torch::tensor({next}, torch::kInt64).to(device()).view({1, 1});
    auto emb = language_model->model->embed_tokens->forward(ids);  // [1,1,H]
    auto pos = torch::full({1, 1}, next_pos++, torch::TensorOptions().dtype(torch::kInt64).device(device()));
    logits = language_model->forward(emb, pos, torch::Tensor(), &cache);
  }
  train(was_training);
  return out;
}

std::pair<torch::Tensor, int64_t> causal_lm_loss_sum(const torch::Tensor& logits,
                                                     const torch::Tensor& labels) {
  int64_t V = logits.size(-1);
  auto dtype = logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto shift_logits = logits.slice(1, 0, -1).to(dtype).reshape({-1, V});  // [B*(T-1), V]
  auto shift_labels = labels.slice(1, 1).reshape({-1}).to(logits.device());
  int64_t count = shift_labels.ne(kIgnoreIndex).sum().item<int64_t>();
  namespace F = torch::nn::functional;
  auto sum = F::cross_entropy(shift_logits, shift_labels,
                              F::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex).reduction(torch::kSum));
  return {sum, count};
}

torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  auto [sum, count] = causal_lm_loss_sum(logits, labels);
  return sum / double(std::max<int64_t>(count, 1));
}

std::string model_summary(LlavaForConditionalGeneration& m) {
  int64_t vision = 0, projector = 0, language = 0, lora = 0, trainable = 0;
  for (const auto& item : m->named_parameters()) {
    int64_t n = item.value().numel();
    const std::string& name = item.key();
    if (name.find(".lora_") != std::string::npos) lora += n;
    else if (name.rfind("vision_tower.", 0) == 0) vision += n;
    else if (name.rfind("multi_modal_projector.", 0) == 0) projector += n;
    else language += n;
    if (item.value().requires_grad()) trainable += n;
  }
  int64_t total = vision + projector + language + lora;
  std::ostringstream out;
  out << "parameters: " << total << " (vision " << vision << ", projector " << projector
      << ", language model " << language << ", lora " << lora << "); trainable " << trainable
      << " (" << (total ? 100.0 * double(trainable) / double(total) : 0.0) << "%)";
  return out.str();
}

}  // namespace sweep::model
