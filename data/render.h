// A sample as the model sees it (`sweep check-data --show`): the templated conversation cut into
// spans of text, special tokens and the image, each marked supervised or not by the same
// tokenize_sample the worker trains with, and placed at its position in the spliced sequence so
// that the cut at the maximum sequence length shows. LibTorch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/preprocess.h"
#include "data/tokenizer.h"

namespace sweep::data {

struct RenderSpan {
  enum class Kind { kText, kSpecial, kImage };
  Kind kind = Kind::kText;
  std::string text;         // the decoded text; "<s>" / "</s>" for kSpecial; empty for kImage
  bool supervised = false;  // every token of the span has a label != kIgnoreIndex
  bool past_cut = false;    // the span lies at or past the maximum sequence length
  int64_t first_token = 0;  // [first_token, end_token): indices into input_ids / labels
  int64_t end_token = 0;
  int64_t position = 0;   // first position in the spliced sequence
  int64_t positions = 0;  // positions it takes there (image_tokens for the image)
};

struct RenderedSample {
  std::vector<RenderSpan> spans;  // in order; a span never straddles the cut
  int64_t max_length = 0;
  int64_t length = 0;  // spliced length before truncation
  bool truncated() const { return length > max_length; }
};

// Spans break wherever the label mask, the token kind or the cut changes. An image that the cut
// goes through is one span with past_cut false and position + positions > max_length.
RenderedSample render_sample(const TokenizedSample& t, const Tokenizer& tok, int64_t image_tokens,
                             int64_t max_length);

// The sample as text: supervised spans in [brackets] (green with `color`), the image as
// <image: N tokens at positions A-B>, and a line where the maximum sequence length cuts, after
// which the rest is shown for reference (dim with `color`).
std::string format_rendered(const RenderedSample& r, bool color);

}  // namespace sweep::data
