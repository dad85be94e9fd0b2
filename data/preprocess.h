// Tokenisation and label masking of one sample, as LLaVA's preprocess_v1 with
// tokenizer_image_token (reference §3): BOS once, "<image>" replaced by one placeholder id
// kImageTokenIndex, labels kIgnoreIndex everywhere except each answer and its "</s>".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/llava_json.h"
#include "data/special_tokens.h"
#include "data/tokenizer.h"

namespace sweep::data {

struct TokenizedSample {
  std::vector<int64_t> input_ids;  // BOS first; kImageTokenIndex where the image features go
  std::vector<int64_t> labels;     // same length; kIgnoreIndex where not supervised
  bool has_image = false;
  // LLaVA's "tokenization mismatch": the round-by-round token count did not add up to the
  // whole, so every label was masked (the sample trains on nothing).
  bool mismatch = false;
  int64_t supervised_tokens = 0;  // labels != kIgnoreIndex
};

// `has_image`: the sample has an image (the <image> token is moved to the front and split out).
// Not truncated here: the model truncates after splicing the image features. `max_length` only
// decides, like LLaVA, whether the mismatch check applies (it is skipped when the counted length
// reaches max_length); 0 = always check. Throws Failure (kUser) naming the sample when roles do
// not alternate.
TokenizedSample tokenize_sample(const Sample& s, const Tokenizer& tok, bool has_image,
                                int64_t max_length = 0);

// For generation-based eval: the prompt of the first round up to and including "ASSISTANT:"
// (ids with BOS and the -200 placeholder), and the reference answer text of that round.
struct PromptAndAnswer {
  std::vector<int64_t> prompt_ids;
  std::string answer;
};
PromptAndAnswer first_round_prompt(const Sample& s, const Tokenizer& tok, bool has_image);

// Lower-case (ASCII), collapse runs of whitespace to one space, trim, strip trailing . ! ?
std::string normalize_answer(const std::string& s);

// Effective length after splicing: input_ids.size() - (#placeholders) + (#placeholders) *
// image_tokens. `image_tokens` = (image_size / patch_size)^2, 576 for CLIP ViT-L/14-336.
int64_t spliced_length(const TokenizedSample& t, int64_t image_tokens);

// Supervised tokens that survive truncating the spliced sequence to `max_length`.
int64_t supervised_after_truncation(const TokenizedSample& t, int64_t image_tokens,
                                    int64_t max_length);

}  // namespace sweep::data
