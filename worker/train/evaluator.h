// Validation of a model on a LLaVA JSON set: mean cross-entropy over answer tokens (val_loss,
// the model's token losses at supervised positions, the path the training loss takes),
// next-token accuracy on those tokens (val_token_acc), and exact match of the greedily generated
// first-round answer against the reference after normalize_answer (case, spaces, trailing . ! ?).
// Samples are tokenised and their images preprocessed once, at construction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/llava_json.h"
#include "data/preprocess.h"
#include "data/tokenizer.h"
#include "worker/model/llava.h"

namespace sweep::train {

class VisionFeatureCache;

struct EvalOptions {
  std::string image_folder;
  int image_size = 336;
  bool pad_to_square = true;
  int64_t max_length = 2048;
  int max_new_tokens = 16;
  int batch_size = 8;   // samples per loss forward pass and per batch of generated answers
  int max_samples = 0;  // > 0: eval_subset(n, max_samples, seed), the same at every eval
  uint64_t seed = 0;
  bool generate = true;          // false: skip exact match (loss and token accuracy only)
  int keep_predictions = 5;      // generated answers kept in EvalResult::predictions (the first n)
  int64_t max_image_pixels = 0;  // > 0: larger images are refused before decoding
};

struct SampleScore {
  std::string id;
  double loss = 0;      // mean over the sample's supervised tokens (0 when none)
  int64_t tokens = 0;   // supervised tokens
  int64_t correct = 0;  // of those, predicted exactly by argmax
  bool exact_match = false;
  std::string prediction;  // generated answer text
  std::string answer;      // reference answer text
  std::string prompt;      // the first human turn
};

struct EvalResult {
  double val_loss = 0;         // sum of token losses / supervised tokens
  double val_token_acc = 0;    // correct / supervised tokens
  double val_exact_match = 0;  // fraction of samples
  int64_t val_samples = 0;
  int64_t val_tokens = 0;
  double seconds = 0;
  // The first keep_predictions samples with their generated answers (empty without generate).
  std::vector<SampleScore> predictions;
  nlohmann::json to_json() const;  // {val_loss, val_token_acc, val_exact_match, val_samples}
};

class Evaluator {
 public:
  // Throws std::runtime_error naming the sample whose image or text cannot be prepared.
  Evaluator(const std::vector<data::Sample>& samples, const data::Tokenizer& tok, EvalOptions opt);

  // Puts the model in eval mode (no dropout) and restores its training flag afterwards.
  EvalResult run(model::LlavaForConditionalGeneration& m,
                 std::vector<SampleScore>* per_sample = nullptr);

  size_t size() const { return items_.size(); }
  const EvalOptions& options() const { return opt_; }
  // The image file of each evaluated sample ("" for a text-only one), in evaluation order.
  std::vector<std::string> image_paths() const;
  // Image features from `cache` (not owned; outlives the evaluator) instead of the vision tower.
  void use_feature_cache(VisionFeatureCache* cache) { feature_cache_ = cache; }

 private:
  struct Item {
    std::string id;
    data::TokenizedSample tokens;
    data::PromptAndAnswer prompt;
    std::string prompt_text;    // the first human turn, as written
    std::vector<float> pixels;  // empty for text-only samples
    std::string image_path;     // empty for text-only samples
  };

  // Items [first, first + count) as one batch on the model's device, image features from the
  // cache when there is one; with `prompts`, each item's first-round prompt instead of its tokens.
  model::MultimodalInputs inputs(model::LlavaForConditionalGeneration& m, size_t first,
                                 size_t count, bool prompts) const;

  data::Tokenizer tok_;
  EvalOptions opt_;
  std::vector<Item> items_;
  VisionFeatureCache* feature_cache_ = nullptr;
};

}  // namespace sweep::train
