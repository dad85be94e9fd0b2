#include "data/render.h"

#include "data/special_tokens.h"

namespace sweep::data {
namespace {

enum class TokenKind { kText, kSpecial, kImage };

TokenKind kind_of(int64_t id, const Tokenizer& tok) {
  if (id == kImageTokenIndex) return TokenKind::kImage;
  if (id == tok.bos_id() || id == tok.eos_id()) return TokenKind::kSpecial;
  return TokenKind::kText;
}

// The text of input_ids[first, end) as it reads inside the whole decoded conversation: the
// difference of two prefix decodings keeps the spaces SentencePiece drops at the start of a
// decode. Falls back to decoding the span alone where a prefix ends inside a multi-byte
// character.
std::string span_text(const std::vector<int64_t>& ids, int64_t first, int64_t end,
                      const Tokenizer& tok) {
  const std::string before = tok.decode({ids.begin(), ids.begin() + first});
  const std::string through = tok.decode({ids.begin(), ids.begin() + end});
  if (through.compare(0, before.size(), before) == 0) return through.substr(before.size());
  return tok.decode({ids.begin() + first, ids.begin() + end});
}

}  // namespace

RenderedSample render_sample(const TokenizedSample& t, const Tokenizer& tok, int64_t image_tokens,
                             int64_t max_length) {
  RenderedSample r;
  r.max_length = max_length;
  r.length = spliced_length(t, image_tokens);
  const auto n = static_cast<int64_t>(t.input_ids.size());
  int64_t position = 0;
  for (int64_t i = 0; i < n;) {
    const TokenKind kind = kind_of(t.input_ids[i], tok);
    RenderSpan span;
    span.first_token = i;
    span.position = position;
    span.supervised = is_supervised(t.labels[i]);
    span.past_cut = position >= max_length;
    if (kind == TokenKind::kImage) {
      span.kind = RenderSpan::Kind::kImage;
      span.positions = image_tokens;
      ++i;
    } else {
      // One special token per span; a text span runs while kind, label mask and side of the cut
      // stay the same.
      span.kind =
          kind == TokenKind::kSpecial ? RenderSpan::Kind::kSpecial : RenderSpan::Kind::kText;
      int64_t end = i + 1;
      while (kind == TokenKind::kText && end < n &&
             kind_of(t.input_ids[end], tok) == TokenKind::kText &&
             is_supervised(t.labels[end]) == span.supervised &&
             (position + (end - i) >= max_length) == span.past_cut) {
        ++end;
      }
      span.positions = end - i;
      if (span.kind == RenderSpan::Kind::kSpecial) {
        span.text = t.input_ids[i] == tok.bos_id() ? "<s>" : "</s>";
      } else {
        span.text = span_text(t.input_ids, i, end, tok);
      }
      i = end;
    }
    span.end_token = i;
    position += span.positions;
    r.spans.push_back(std::move(span));
  }
  return r;
}

std::string format_rendered(const RenderedSample& r, bool color) {
  const char* kGreen = "\033[1;32m";
  const char* kDim = "\033[2m";
  const char* kReset = "\033[0m";
  std::string out;
  bool cut_shown = false;
  bool marking = false;  // inside a run of supervised spans: one mark around the whole run
  auto close_mark = [&] {
    if (!marking) return;
    marking = false;
    if (color && !cut_shown) {
      out += kReset;
    } else {
      out += "]";
    }
  };
  for (const RenderSpan& s : r.spans) {
    if (s.past_cut && !cut_shown) {
      close_mark();
      cut_shown = true;
      out += "\n----- cut at max_seq_len " + std::to_string(r.max_length) + " (" +
             std::to_string(r.length - r.max_length) +
             " more positions are not seen by the model) -----\n";
      if (color) out += kDim;
    }
    if (!s.supervised || s.kind == RenderSpan::Kind::kImage) close_mark();
    if (s.kind == RenderSpan::Kind::kImage) {
      const int64_t last = s.position + s.positions - 1;
      out += "<image: " + std::to_string(s.positions) + " tokens at positions " +
             std::to_string(s.position) + "-" + std::to_string(last);
      if (!s.past_cut && last >= r.max_length) out += ", cut at " + std::to_string(r.max_length);
      out += ">";
      continue;
    }
    if (s.supervised && !marking) {
      marking = true;
      out += color && !cut_shown ? kGreen : "[";
    }
    out += s.text;
  }
  close_mark();
  if (cut_shown && color) out += kReset;
  if (!out.empty() && out.back() != '\n') out += "\n";
  return out;
}

}  // namespace sweep::data
