#include "worker/train/evaluator.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <torch/torch.h>

#include "data/image.h"
#include "data/shapes/seeded_random.h"
#include "worker/train/collate.h"

namespace sweep::train {
namespace {

std::vector<size_t> pick_subset(size_t n, int max_samples, uint64_t seed) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  if (max_samples <= 0 || static_cast<size_t>(max_samples) >= n) return idx;
  data::SeededRandom rng(seed);
  rng.shuffle(idx);
  idx.resize(max_samples);
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace

nlohmann::json EvalResult::to_json() const {
  return {{"val_loss", val_loss},
          {"val_token_acc", val_token_acc},
          {"val_exact_match", val_exact_match},
          {"val_samples", val_samples}};
}

Evaluator::Evaluator(const std::vector<data::Sample>& samples, const data::Tokenizer& tok,
                     EvalOptions opt)
    : tok_(tok), opt_(std::move(opt)) {
  for (size_t i : pick_subset(samples.size(), opt_.max_samples, opt_.seed)) {
    const data::Sample& s = samples[i];
    Item item;
    item.id = s.id.empty() ? std::to_string(i) : s.id;
    const bool has_image = !s.image.empty();
    item.tokens = data::tokenize_sample(s, tok_, has_image, opt_.max_length);
    item.prompt = data::first_round_prompt(s, tok_, has_image);
    if (has_image) {
      const std::string path = (std::filesystem::path(opt_.image_folder) / s.image).string();
      item.pixels = data::clip_preprocess(data::decode_image(path), opt_.image_size, opt_.pad_to_square);
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

  // Loss and token accuracy, batched; per-sample sums so a sample's score does not depend on
  // which others share its batch.
  const size_t B = std::max(1, opt_.batch_size);
  for (size_t first = 0; first < items_.size(); first += B) {
    std::vector<data::LoadedSample> batch;
    for (size_t i = first; i < std::min(items_.size(), first + B); ++i)
      batch.push_back({i, items_[i].id, items_[i].tokens, items_[i].pixels});
    model::SplicedBatch b = m->splice(collate(batch, opt_.image_size, device), opt_.max_length);
    torch::Tensor logits = m->forward(b).to(torch::kFloat32);                 // (B, T, V)
    torch::Tensor shift_logits = logits.slice(1, 0, -1);                      // (B, T-1, V)
    torch::Tensor shift_labels = b.labels.slice(1, 1);                        // (B, T-1)
    torch::Tensor mask = shift_labels.ne(model::kIgnoreIndex);                // (B, T-1)
    torch::Tensor safe_labels = shift_labels.masked_fill(~mask, 0);
    torch::Tensor token_loss = torch::nn::functional::cross_entropy(
        shift_logits.transpose(1, 2), safe_labels,
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));  // (B, T-1)
    torch::Tensor correct = shift_logits.argmax(-1).eq(safe_labels).logical_and(mask);
    torch::Tensor loss_sum = (token_loss * mask).sum(1).cpu();  // (B)
    torch::Tensor n_tokens = mask.sum(1).cpu();
    torch::Tensor n_correct = correct.sum(1).cpu();
    for (size_t j = 0; j < batch.size(); ++j) {
      SampleScore& s = scores[first + j];
      s.id = items_[first + j].id;
      s.tokens = n_tokens[j].item<int64_t>();
      s.correct = n_correct[j].item<int64_t>();
      const double sum = loss_sum[j].item<double>();
      s.loss = s.tokens ? sum / s.tokens : 0.0;
    }
  }

  // Exact match of the greedy first-round answer.
  for (size_t i = 0; opt_.generate && i < items_.size(); ++i) {
    const Item& item = items_[i];
    torch::Tensor pixels = pixels_to_tensor(item.pixels, opt_.image_size, device);
    std::vector<int64_t> out = m->generate(item.prompt.prompt_ids, pixels, opt_.max_new_tokens,
                                           tok_.eos_id());
    scores[i].prediction = tok_.decode(out);
    scores[i].answer = item.prompt.answer;
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
  if (per_sample) *per_sample = std::move(scores);
  return r;
}

}  // namespace sweep::train
