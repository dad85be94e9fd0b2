// `sweep check-data`: every problem of a LLaVA dataset, with the sample index and id, and a
// summary by kind. LibTorch-free. Kinds (docs/data.md has the full table):
//   errors:   file_unreadable, invalid_json, not_an_array, sample_not_object, missing_field,
//   extra_field (a key
//             close to a known one, e.g. "imgae"), wrong_type, empty_conversation, unknown_role,
//             roles_not_alternating, empty_value, no_answer, image_missing, image_unreadable,
//             image_not_decodable, image_too_large, image_outside_folder,
//             image_folder_missing (once, for the file), image_token_missing,
//             image_token_repeated, image_token_without_image, no_supervised_tokens,
//             tokenization_mismatch, image_truncated
//   warnings: extra_field (any other unknown key: ignored), leading_gpt_turn, duplicate_id,
//             unanswered_turn, truncated
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/image.h"
#include "data/render.h"

namespace sweep::data {

struct DataProblem {
  std::string kind;     // e.g. "image_missing", "roles_not_alternating"
  int64_t index = -1;   // sample index in the array; -1 for the file as a whole
  std::string id;       // the sample's id, empty if it has none
  std::string message;  // what is wrong, naming the field and value
  bool error = true;    // false: a warning, does not fail the check
  std::string hint;     // how to fix it; may be empty
};

// model_max_length when neither the spec nor a flag sets it (TrainParams' default).
constexpr int64_t kDefaultModelMaxLength = 2048;

struct CheckOptions {
  std::string image_folder;  // relative image paths are under it; absolute ones used as given
  // Every image is decoded whole (a truncated file is an error); false: headers only.
  bool decode_images = true;
  // Images whose header claims more pixels are refused before decoding (0: no limit).
  int64_t max_pixels = kDefaultMaxImagePixels;
  std::string model_dir;  // optional: tokenizer.model + config.json, enables token statistics
  // model_max_length (0: kDefaultModelMaxLength). The truncation length is resolve_max_length's
  // (data/max_length.h): this, never past the model's text_config.max_position_embeddings.
  int64_t max_length = 2048;
  // 0: hardware concurrency. Images and tokenisation; at most `threads` images are decoded at
  // once, which bounds the memory to threads x max_pixels x 3 bytes.
  int threads = 0;
  int show = 0;  // with model_dir: render the first `show` tokenised samples (CheckReport::shown)
};

// A sample as the model sees it (`--show`).
struct ShownSample {
  int64_t index = 0;
  std::string id;
  RenderedSample rendered;
};

struct CheckReport {
  std::string path;
  int64_t samples = 0;
  std::vector<DataProblem> problems;  // in sample order
  std::map<std::string, int64_t> counts_by_kind;
  // With model_dir: {max_length, image_tokens, samples, tokens: {min, mean, p50, p95, max},
  // supervised_tokens: {...}, truncated, zero_supervised, mismatches}; null otherwise.
  nlohmann::json token_stats;
  std::vector<ShownSample> shown;  // in sample order

  int64_t errors() const;
  int64_t warnings() const;
  bool ok() const { return errors() == 0; }
  nlohmann::json to_json() const;
};

// Never throws for problems of the data (they are reported); throws Failure (common/failure.h) when
// the model dir given cannot be read.
CheckReport check_data(const std::string& json_path, const CheckOptions& opt);

}  // namespace sweep::data
