// The one maximum sequence length of a job: what training truncates each spliced sample to, what
// evaluation truncates to, and what `sweep check-data` and the prepare step of `sweep run` check
// against. LibTorch-free, so that `sweep` and `sweep-worker` resolve it with the same code.
//
// Rule: the spec's model_max_length (default 2048), never past the language model's
// text_config.max_position_embeddings: positions past it have no trained rotary context, so a
// longer setting is clamped to it (with a one-line notice; docs/data.md).
#pragma once

#include <cstdint>
#include <string>

namespace sweep::data {

struct MaxLength {
  int64_t value = 0;          // the length every program truncates at
  int64_t requested = 0;      // model_max_length as the spec (or flag) asked
  int64_t max_positions = 0;  // text_config.max_position_embeddings; 0 when not known
  bool clamped() const { return value < requested; }
  // "model_max_length 2048 is past the model's max_position_embeddings 512: sequences are cut
  // at 512"; empty when not clamped.
  std::string notice() const;
};

// `model_max_length` > 0. `max_position_embeddings` <= 0: unknown, no clamp.
MaxLength resolve_max_length(int64_t model_max_length, int64_t max_position_embeddings);

// text_config.max_position_embeddings (or the top-level key of a plain LLaMA config) of
// `<model_dir>/config.json`; 0 when the file or the key is missing. Throws Failure (kUser) naming
// the file when it is not valid JSON.
int64_t read_max_position_embeddings(const std::string& model_dir);

}  // namespace sweep::data
