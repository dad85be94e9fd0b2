#include "worker/train/evaluator.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <torch/torch.h>

#include "data/image.h"
#include "worker/model/causal_lm_loss.h"
#include "worker/train/collate.h"
#include "worker/train/eval_subset.h"
#include "worker/train/feature_cache.h"

namespace sweep::train {

nlohmann::json EvalResult::to_json() const {
  return {{"val_loss", val_loss},
          {"val_token_acc", val_token_acc},
          {"val_exact_match", val_exact_match},
          {"val_samples", val_samples}};
}

std::vector<std::string> Evaluator::image_paths() const {
  std::vector<std::string> paths;
  for (const Item& item : items_) paths.push_back(item.image_path);
  return paths;
}

Evaluator::Evaluator(const std::vector<data::Sample>& samples, const data::Tokenizer& tok,
                     EvalOptions opt)
    : tok_(tok), opt_(std::move(opt)) {
  for (size_t i : eval_subset(samples.size(), opt_.max_samples, opt_.seed)) {
    const data::Sample& s = samples[i];
    Item item;
    item.id = s.id.empty() ? std::to_string(i) : s.id;
    const bool has_image = !s.image.empty();
    item.tokens = data::tokenize_sample(s, tok_, has_image, opt_.max_length);
    item.prompt = data::first_round_prompt(s, tok_, has_image);
    if (!s.conversations.empty()) item.prompt_text = s.conversations.front().value;
    if (has_image) {
      item.image_path = (std::filesystem::path(opt_.image_folder) / s.image).string();
      item.pixels =
          data::clip_preprocess(data::decode_image(item.image_path, opt_.max_image_pixels),
                                opt_.image_size, opt_.pad_to_square);
    }
    items_.push_back(std::move(item));
  }
}

EvalResult Evaluator::run(model::LlavaForConditionalGeneration& m,
                          std::vector<SampleScore>* per_sample) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool was_training = m->is_training();
  m->eval();
  torch::NoGradGuard no_grad;
  const torch::Device device = m->device();
  std::vector<SampleScore> scores(items_.size());

  // Loss and token accuracy, batched. Each sample's loss is the model's loss of that sample
  // alone, so its score does not depend on which others share its batch.
  const size_t B = std::max(1, opt_.batch_size);
  for (size_t first = 0; first < items_.size(); first += B) {
    std::vector<data::LoadedSample> batch;
    std::vector<std::string> paths;
    for (size_t i = first; i < std::min(items_.size(), first + B); ++i) {
      batch.push_back({i, items_[i].id, items_[i].tokens, items_[i].pixels});
      paths.push_back(items_[i].image_path);
    }
    model::MultimodalInputs in = collate(batch, opt_.image_size, device);
    if (feature_cache_) feature_cache_->fill(m, in, paths);  // in.image_hidden (Ni, P, Dv)
    model::SplicedBatch b = m->splice(in, opt_.max_length);
    // Loss and accuracy count only at supervised positions, so logits are computed there only.
    const model::SupervisedPositions at = model::supervised_positions(b.labels);
    torch::Tensor logits = m->logits_at(b, at.rows);                          // (N, V)
    torch::Tensor losses = model::token_losses(logits, at.targets);           // (N) fp32
    torch::Tensor hits = logits.argmax(-1).eq(at.targets).to(torch::kInt64);  // (N)
    const auto samples = static_cast<int64_t>(batch.size());
    torch::Tensor loss_sums =
        torch::zeros({samples}, losses.options()).index_add_(0, at.samples, losses);
    torch::Tensor counts =
        torch::zeros({samples}, hits.options()).index_add_(0, at.samples, torch::ones_like(hits));
    torch::Tensor correct = torch::zeros({samples}, hits.options()).index_add_(0, at.samples, hits);
    loss_sums = loss_sums.to(torch::kFloat64).cpu();  // (B)
    counts = counts.cpu();                            // (B)
    correct = correct.cpu();                          // (B)
    for (size_t j = 0; j < batch.size(); ++j) {
      const auto row = static_cast<int64_t>(j);
      const int64_t tokens = counts[row].item<int64_t>();
      SampleScore& s = scores[first + j];
      s.id = items_[first + j].id;
      s.tokens = tokens;
      s.correct = correct[row].item<int64_t>();
      s.loss = tokens ? loss_sums[row].item<double>() / static_cast<double>(tokens) : 0.0;
    }
  }

  // Exact match of the greedy first-round answer.
  for (size_t i = 0; opt_.generate && i < items_.size(); ++i) {
    const Item& item = items_[i];
    torch::Tensor pixels = pixels_to_tensor(item.pixels, opt_.image_size, device);
    torch::Tensor hidden;  // (P, Dv) from the cache, else generate runs the vision tower
    if (feature_cache_ && pixels.defined())
      hidden = feature_cache_->hidden(m, item.image_path, pixels);
    std::vector<int64_t> out =
        m->generate(item.prompt.prompt_ids, pixels, opt_.max_new_tokens, tok_.eos_id(), hidden);
    scores[i].prediction = tok_.decode(out);
    scores[i].answer = item.prompt.answer;
    scores[i].prompt = item.prompt_text;
    scores[i].exact_match =
        data::normalize_answer(scores[i].prediction) == data::normalize_answer(item.prompt.answer);
  }

  EvalResult r;
  double loss_total = 0;
  int64_t correct_total = 0, matches = 0;
  for (const SampleScore& s : scores) {
    loss_total += s.loss * s.tokens;
    r.val_tokens += s.tokens;
    correct_total += s.correct;
    matches += s.exact_match ? 1 : 0;
  }
  r.val_samples = static_cast<int64_t>(scores.size());
  r.val_loss = r.val_tokens ? loss_total / r.val_tokens : 0.0;
  r.val_token_acc = r.val_tokens ? static_cast<double>(correct_total) / r.val_tokens : 0.0;
  r.val_exact_match = r.val_samples ? static_cast<double>(matches) / r.val_samples : 0.0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (was_training) m->train();
  const size_t kept =
      opt_.generate ? std::min<size_t>(std::max(0, opt_.keep_predictions), scores.size()) : 0;
  r.predictions.assign(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(kept));
  if (per_sample) *per_sample = std::move(scores);
  return r;
}

}  // namespace sweep::train
