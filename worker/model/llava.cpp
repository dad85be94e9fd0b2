// Shapes: B batch, T tokens after splicing, H text width, P image tokens per image, V vocab.
#include "worker/model/llava.h"

#include <algorithm>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>

#include "worker/model/parameter_placement.h"
#include "worker/model/tensor_roles.h"

namespace sweep::model {
namespace {

// Parameters that stay in full precision: trained ones (projector, LoRA adapters).
bool keeps_full_precision(const TensorClass& c) {
  return c.role == TensorRole::kProjector || c.is_lora();
}

}  // namespace

LlavaForConditionalGenerationImpl::LlavaForConditionalGenerationImpl(const LlavaConfig& config,
                                                                     uint64_t seed)
    : config_(config) {
  config_.validate();
  vision_tower = register_module("vision_tower", ClipVisionModel(config_.vision));
  multi_modal_projector =
      register_module("multi_modal_projector",
                      MultiModalProjector(config_.vision.hidden_size, config_.text.hidden_size,
                                          config_.projector_hidden_act));
  language_model = register_module("language_model", LlamaForCausalLM(config_.text));
  if (drawing_parameters()) init_weights(seed);
}

LlavaForConditionalGeneration empty_llava(const LlavaConfig& config, torch::Dtype base_dtype,
                                          torch::Device device) {
  ParameterPlacement placement(base_dtype, device);
  LlavaForConditionalGeneration m(config);
  // The projector to full precision, and the few LibTorch modules that ignore the placement
  // (embeddings, CLIP's layer norms and patch convolution: small) to their place.
  m->to_precision(base_dtype, device);
  return m;
}

void LlavaForConditionalGenerationImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // Weights already on an accelerator are drawn there, from its generator seeded with `seed`
  // (other numbers than on the CPU, but no host copy of a large model).
  std::optional<at::Generator> device_gen;
  for (auto& item : named_parameters()) {
    const TensorClass c = classify(item.key());
    torch::Tensor& p = item.value();
    if (c.is_lora()) continue;  // adapters keep their PEFT init
    if (c.is_norm && !c.is_bias) {
      p.fill_(1.0);
    } else if (c.is_bias) {
      p.zero_();
    } else if (!p.device().is_cpu()) {
      if (!device_gen) {
        device_gen = at::globalContext().defaultGenerator(p.device());
        std::lock_guard<std::mutex> lock(device_gen->mutex());
        device_gen->set_current_seed(seed);
      }
      p.normal_(0.0, 0.02, *device_gen);
    } else {
      auto draw = torch::empty(p.sizes(), torch::kFloat32);
      draw.normal_(0.0, 0.02, gen);
      p.copy_(draw);
    }
  }
}

void LlavaForConditionalGenerationImpl::to_precision(torch::Dtype base_dtype,
                                                     torch::Device device) {
  torch::NoGradGuard no_grad;
  auto full = base_dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  for (auto& item : named_parameters()) {
    torch::Tensor& p = item.value();
    auto dtype = keeps_full_precision(classify(item.key())) ? full : base_dtype;
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
  return project_image_hidden(vision_hidden(pixel_values));  // [N, P, H]
}

torch::Tensor LlavaForConditionalGenerationImpl::vision_hidden(const torch::Tensor& pixel_values) {
  auto pixels = pixel_values.to(device());
  auto h = vision_tower->hidden_state(pixels, config_.vision_feature_layer);   // [N, P+1, Dv]
  if (config_.vision_feature_select_strategy == "default") h = h.slice(1, 1);  // drop CLS
  return h;                                                                    // [N, P, Dv]
}

torch::Tensor LlavaForConditionalGenerationImpl::project_image_hidden(const torch::Tensor& hidden) {
  return multi_modal_projector->forward(hidden.to(device())).to(base_dtype());  // [N, P, H]
}

torch::Tensor LlavaForConditionalGenerationImpl::features_of_images(const MultimodalInputs& in) {
  // Text-only samples contribute no features (LLaVA concatenates a zero-length slice of their
  // dummy features), so the vision tower runs only on the samples with an image.
  std::vector<int64_t> with_image;
  for (size_t i = 0; i < in.has_image.size(); ++i)
    if (in.has_image[i]) with_image.push_back(static_cast<int64_t>(i));
  if (with_image.empty()) return {};
  if (in.image_hidden.defined()) {
    if (in.image_hidden.size(0) != static_cast<int64_t>(with_image.size()))
      throw std::runtime_error("splice: image_hidden must have one row per sample with an image");
    return project_image_hidden(in.image_hidden);  // (Ni, P, H)
  }
  const auto B = static_cast<int64_t>(in.input_ids.size());
  if (!in.pixel_values.defined() || in.pixel_values.size(0) != B)
    throw std::runtime_error("splice: pixel_values must be [B,3,S,S] when a sample has an image");
  auto idx = torch::tensor(with_image, torch::kInt64).to(in.pixel_values.device());
  return image_features(in.pixel_values.index_select(0, idx));  // (Ni, P, H)
}

SplicedBatch LlavaForConditionalGenerationImpl::splice(const MultimodalInputs& in,
                                                       int64_t max_length) {
  const size_t B = in.input_ids.size();
  if (in.labels.size() != B || in.has_image.size() != B)
    throw std::runtime_error("splice: input_ids, labels and has_image differ in batch size");
  for (size_t b = 0; b < B; ++b)
    check_sample(in.input_ids[b], in.labels[b], in.has_image[b], b, config_.text.vocab_size);
  torch::Tensor features = features_of_images(in);  // (Ni, P, H)
  std::vector<SampleSequence> samples;
  int64_t image_i = 0;
  for (size_t b = 0; b < B; ++b) {
    const std::vector<int64_t>& ids = in.input_ids[b];
    SampleSequence s =
        embed_text(language_model->model->embed_tokens, ids, in.labels[b]);  // (L, H)
    if (auto at = image_placeholder_position(ids))
      s = place_image_features(s, *at, features[image_i]);  // (L + P, H)
    if (in.has_image[b]) ++image_i;
    samples.push_back(truncate(s, max_length));  // (min(L, max_length), H)
  }
  return pad_batch(samples, device());  // (B, T, H)
}

torch::Tensor LlavaForConditionalGenerationImpl::forward(const SplicedBatch& b) {
  return language_model->forward(b.inputs_embeds, b.position_ids, b.attention_mask);  // [B,T,V]
}

torch::Tensor LlavaForConditionalGenerationImpl::logits_at(const SplicedBatch& b,
                                                           const torch::Tensor& rows) {
  return language_model->forward_rows(b.inputs_embeds, b.position_ids, b.attention_mask,
                                      rows.to(device()));  // [N,V]
}

torch::Tensor LlavaForConditionalGenerationImpl::loss(const SplicedBatch& b) {
  const SupervisedPositions at = supervised_positions(b.labels);
  torch::Tensor losses = token_losses(logits_at(b, at.rows), at.targets);  // [N] fp32
  return losses.sum() / static_cast<double>(std::max<int64_t>(at.count, 1));
}

std::vector<int64_t> LlavaForConditionalGenerationImpl::generate(
    const std::vector<int64_t>& prompt_ids, const torch::Tensor& pixel_values,
    int64_t max_new_tokens, int64_t eos_id, const torch::Tensor& image_hidden) {
  MultimodalInputs in;  // a batch of one
  in.input_ids = {prompt_ids};
  in.labels = {data::unsupervised_labels(prompt_ids.size())};
  const bool image = (pixel_values.defined() || image_hidden.defined()) &&
                     data::count_image_placeholders(prompt_ids) > 0;
  in.has_image = {image};
  if (image && image_hidden.defined()) {
    in.image_hidden = image_hidden.unsqueeze(0);  // (1, P, Dv)
  } else if (image) {
    in.pixel_values = pixel_values.unsqueeze(0);
  }
  return generate_batch(in, max_new_tokens, eos_id).front();
}

std::vector<std::vector<int64_t>> LlavaForConditionalGenerationImpl::generate_batch(
    const MultimodalInputs& in, int64_t max_new_tokens, int64_t eos_id) {
  torch::NoGradGuard no_grad;
  const bool was_training = is_training();
  eval();
  const auto B = static_cast<int64_t>(in.input_ids.size());
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
  if (B == 0 || max_new_tokens <= 0) {
    train(was_training);
    return out;
  }
  SplicedBatch b = splice(in, /*max_length=*/0);  // (B, T, H), right-padded
  const auto int64_opts = torch::TensorOptions().dtype(torch::kInt64).device(device());
  torch::Tensor lengths = b.attention_mask.sum(1).to(torch::kInt64);  // (B)
  torch::Tensor key_mask = b.attention_mask;                          // (B, S) grows per step
  KvCache cache;
  LlamaModel& lm = language_model->model;
  // The prefill's hidden state at each sample's last real position, then lm_head there only.
  torch::Tensor hidden = lm->forward(b.inputs_embeds, b.position_ids, key_mask, &cache);
  hidden = hidden.index({torch::arange(B, int64_opts), lengths - 1});  // (B, H)
  torch::Tensor logits = language_model->lm_head->forward(hidden);     // (B, V)
  std::vector<bool> done(static_cast<size_t>(B), false);
  int64_t running = B;
  for (int64_t step = 0;; ++step) {
    torch::Tensor next = logits.argmax(-1).cpu();  // one host read per step for the batch
    const int64_t* ids = next.data_ptr<int64_t>();
    for (int64_t i = 0; i < B; ++i) {
      const auto u = static_cast<size_t>(i);
      if (done[u]) continue;
      if (ids[i] != eos_id) out[u].push_back(ids[i]);
      if (ids[i] == eos_id || static_cast<int64_t>(out[u].size()) == max_new_tokens) {
        done[u] = true;
        --running;
      }
    }
    if (running == 0) break;
    // Finished samples keep decoding beside the others (their tokens are dropped): one batch.
    torch::Tensor emb = lm->embed_tokens->forward(next.to(device()).view({B, 1}));  // (B, 1, H)
    torch::Tensor pos = (lengths + step).view({B, 1});
    key_mask = torch::cat({key_mask, torch::ones({B, 1}, key_mask.options())}, 1);
    hidden = lm->forward(emb, pos, key_mask, &cache).squeeze(1);  // (B, H)
    logits = language_model->lm_head->forward(hidden);
  }
  train(was_training);
  return out;
}

std::string model_summary(LlavaForConditionalGeneration& m) {
  int64_t vision = 0, projector = 0, language = 0, lora = 0, trainable = 0;
  for (const auto& item : m->named_parameters()) {
    int64_t n = item.value().numel();
    const TensorClass c = classify(item.key());
    if (c.is_lora())
      lora += n;
    else if (c.part == ModelPart::kVisionTower)
      vision += n;
    else if (c.part == ModelPart::kProjector)
      projector += n;
    else
      language += n;
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
