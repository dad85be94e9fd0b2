#include "data/conversation.h"

#include "common/failure.h"
#include "data/text_util.h"

namespace sweep::data {

const char* const kVicunaSystem =
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.";
const char* const kImageToken = "<image>";

std::string move_image_token_to_front(const std::string& value) {
  if (value.find(kImageToken) == std::string::npos) return value;
  // LLaVA: value.replace('<image>', '').strip(), then '<image>\n' + rest, stripped again.
  const std::string rest = strip(replace_all(value, kImageToken, ""));
  return strip(std::string(kImageToken) + "\n" + rest);
}

std::vector<Turn> template_turns(const Sample& s, bool has_image) {
  size_t first = 0;
  if (!s.conversations.empty() && s.conversations[0].from != "human") first = 1;
  std::vector<Turn> turns(s.conversations.begin() + static_cast<std::ptrdiff_t>(first),
                          s.conversations.end());
  for (size_t j = 0; j < turns.size(); ++j) {
    const char* expected = j % 2 == 0 ? "human" : "gpt";
    if (turns[j].from != expected) {
      fail(ErrorKind::kUser, "sample " + s.id + ": conversations[" + std::to_string(j + first) +
                                 "] is from \"" + turns[j].from + "\", expected \"" + expected +
                                 "\" (roles must alternate)");
    }
    if (has_image) turns[j].value = move_image_token_to_front(turns[j].value);
  }
  return turns;
}

std::string vicuna_v1_prompt_of(const std::vector<Turn>& turns) {
  // SeparatorStyle.TWO with sep " " and sep2 "</s>"; an empty message writes "ROLE:" alone.
  std::string out = std::string(kVicunaSystem) + " ";
  for (size_t j = 0; j < turns.size(); ++j) {
    const char* role = j % 2 == 0 ? "USER" : "ASSISTANT";
    if (turns[j].value.empty()) {
      out += std::string(role) + ":";
    } else {
      out += std::string(role) + ": " + turns[j].value + (j % 2 == 0 ? " " : "</s>");
    }
  }
  return out;
}

std::string vicuna_v1_prompt(const Sample& s) {
  return vicuna_v1_prompt_of(template_turns(s, !s.image.empty()));
}

}  // namespace sweep::data
