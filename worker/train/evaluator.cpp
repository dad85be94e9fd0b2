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

model::MultimodalInputs Evaluator::inputs(model::LlavaForConditionalGeneration& m, size_t first,
                                          size_t count, bool prompts) const {
  std::vector<data::LoadedSample> batch;
  std::vector<std::string> paths;
  for (size_t i = first; i < first + count; ++i) {
    const Item& item = items_[i];
    data::TokenizedSample tokens = item.tokens;
    if (prompts) {  // the first round's prompt, nothing supervised
      tokens.input_ids = item.prompt.prompt_ids;
      tokens.labels = data::unsupervised_labels(tokens.input_ids.size());
      tokens.has_image = tokens.has_image && data::count_image_placeholders(tokens.input_ids) > 0;
    }
    batch.push_back({i, item.id, std::move(tokens), item.pixels});
    paths.push_back(item.image_path);
  }
  model::MultimodalInputs in = collate(batch, opt_.image_size, m->device());
  if (feature_cache_) feature_cache_->fill(m, in, paths);  // in.image_hidden (Ni, P, Dv)
  return in;
}

EvalResult Evaluator::run(model::LlavaForConditionalGeneration& m,
                          std::vector<SampleScore>* per_sample) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool was_training = m->is_training();
  m->eval();
  torch::NoGradGuard no_grad;
  std::vector<SampleScore> scores(items_.size());

  // Loss and token accuracy, batched. Each sample's loss is the model's loss of that sample
  // alone, so its score does not depend on which others share its batch.
  const size_t B = std::max(1, opt_.batch_size);
  for (size_t first = 0; first < items_.size(); first += B) {
    const size_t count = std::min(items_.size(), first + B) - first;
    model::MultimodalInputs in = inputs(m, first, count, /*prompts=*/false);
    model::SplicedBatch b = m->splice(in, opt_.max_length);
    // Loss and accuracy count only at supervised positions, so logits are computed there only.
    const model::SupervisedPositions at = model::supervised_positions(b.labels);
    torch::Tensor logits = m->logits_at(b, at.rows);                          // (N, V)
    torch::Tensor losses = model::token_losses(logits, at.targets);           // (N) fp32
    torch::Tensor hits = logits.argmax(-1).eq(at.targets).to(torch::kInt64);  // (N)
    const auto samples = static_cast<int64_t>(count);
    torch::Tensor loss_sums =
        torch::zeros({samples}, losses.options()).index_add_(0, at.samples, losses);
    torch::Tensor counts =
        torch::zeros({samples}, hits.options()).index_add_(0, at.samples, torch::ones_like(hits));
    torch::Tensor correct = torch::zeros({samples}, hits.options()).index_add_(0, at.samples, hits);
    loss_sums = loss_sums.to(torch::kFloat64).cpu();  // (B)
    counts = counts.cpu();                            // (B)
    correct = correct.cpu();                          // (B)
    for (size_t j = 0; j < count; ++j) {
      const auto row = static_cast<int64_t>(j);
      const int64_t tokens = counts[row].item<int64_t>();
      SampleScore& s = scores[first + j];
      s.id = items_[first + j].id;
      s.tokens = tokens;
      s.correct = correct[row].item<int64_t>();
      s.loss = tokens ? loss_sums[row].item<double>() / static_cast<double>(tokens) : 0.0;
    }
  }

  // Exact match of the greedy first-round answer, decoded a batch at a time.
  for (size_t first = 0; opt_.generate && first < items_.size(); first += B) {
    const size_t count = std::min(items_.size(), first + B) - first;
    const std::vector<std::vector<int64_t>> answers = m->generate_batch(
        inputs(m, first, count, /*prompts=*/true), opt_.max_new_tokens, tok_.eos_id());
    for (size_t j = 0; j < count; ++j) {
      const Item& item = items_[first + j];
      SampleScore& s = scores[first + j];
      s.prediction = tok_.decode(answers[j]);
      s.answer = item.prompt.answer;
      s.prompt = item.prompt_text;
      s.exact_match =
          data::normalize_answer(s.prediction) == data::normalize_answer(item.prompt.answer);
    }
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
