#include "data/preprocess.h"

#include <algorithm>
#include <cctype>

#include "data/conversation.h"
#include "data/text_util.h"

namespace sweep::data {
namespace {

// LLaVA's tokenizer_image_token: each chunk between <image> tokens is tokenised with BOS, the
// first chunk keeps it, the others drop it, and one placeholder sits between chunks.
std::vector<int64_t> tokenize_with_image(const std::string& text, const Tokenizer& tok) {
  const std::vector<std::string> chunks = split_all(text, kImageToken);
  std::vector<int64_t> ids;
  for (size_t c = 0; c < chunks.size(); ++c) {
    const std::vector<int64_t> chunk = tok.encode(chunks[c], /*add_bos=*/true);
    if (c > 0) ids.push_back(kImageTokenIndex);
    ids.insert(ids.end(), chunk.begin() + (c == 0 ? 0 : 1), chunk.end());
  }
  return ids;
}

std::vector<int64_t> tokenize_text(const std::string& text, const Tokenizer& tok, bool has_image) {
  return has_image ? tokenize_with_image(text, tok) : tok.encode(text, /*add_bos=*/true);
}

}  // namespace

TokenizedSample tokenize_sample(const Sample& s, const Tokenizer& tok, bool has_image,
                                int64_t max_length) {
  const std::string conversation = vicuna_v1_prompt_of(template_turns(s, has_image));
  TokenizedSample out;
  out.has_image = has_image;
  out.input_ids = tokenize_text(conversation, tok, has_image);
  out.labels = out.input_ids;
  const auto total_len = static_cast<int64_t>(std::count_if(
      out.input_ids.begin(), out.input_ids.end(), [&](int64_t id) { return id != tok.pad_id(); }));

  // preprocess_v1: round by round, mask each instruction up to and including "ASSISTANT:";
  // "- 2" drops the BOS and the lone "▁" of the trailing space of "ASSISTANT: ".
  const std::string sep = " ASSISTANT: ";
  int64_t cur_len = 1;
  mask_labels(&out.labels, 0, cur_len);
  for (const std::string& rou : split_all(conversation, "</s>")) {
    if (rou.empty()) break;
    std::vector<std::string> parts = split_all(rou, sep);
    if (parts.size() != 2) break;
    parts[0] += sep;
    const auto round_len = static_cast<int64_t>(tokenize_text(rou, tok, has_image).size());
    const auto instruction_len =
        static_cast<int64_t>(tokenize_text(parts[0], tok, has_image).size()) - 2;
    mask_labels(&out.labels, cur_len, cur_len + instruction_len);
    cur_len += round_len;
  }
  mask_labels(&out.labels, cur_len, static_cast<int64_t>(out.labels.size()));

  if ((max_length <= 0 || cur_len < max_length) && cur_len != total_len) {
    mask_labels(&out.labels, 0, static_cast<int64_t>(out.labels.size()));
    out.mismatch = true;
  }
  out.supervised_tokens = count_supervised(out.labels);
  return out;
}

PromptAndAnswer first_round_prompt(const Sample& s, const Tokenizer& tok, bool has_image) {
  const std::vector<Turn> turns = template_turns(s, has_image);
  PromptAndAnswer out;
  // The eval prompt appends an empty assistant message, which the template writes as "ASSISTANT:".
  std::vector<Turn> round;
  if (!turns.empty()) round.push_back(turns[0]);
  round.push_back(Turn{"gpt", ""});
  out.prompt_ids = tokenize_text(vicuna_v1_prompt_of(round), tok, has_image);
  if (turns.size() > 1) out.answer = turns[1].value;
  return out;
}

std::string normalize_answer(const std::string& s) {
  std::string out;
  bool pending_space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  while (!out.empty() &&
         (out.back() == '.' || out.back() == '!' || out.back() == '?' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

int64_t spliced_length(const TokenizedSample& t, int64_t image_tokens) {
  const int64_t images = count_image_placeholders(t.input_ids);
  return static_cast<int64_t>(t.input_ids.size()) + images * (image_tokens - 1);
}

int64_t supervised_after_truncation(const TokenizedSample& t, int64_t image_tokens,
                                    int64_t max_length) {
  int64_t position = 0, supervised = 0;
  for (size_t i = 0; i < t.input_ids.size() && position < max_length; ++i) {
    if (t.input_ids[i] == kImageTokenIndex) {
      position += image_tokens;
      continue;
    }
    if (is_supervised(t.labels[i])) ++supervised;
    ++position;
  }
  return supervised;
}

}  // namespace sweep::data
