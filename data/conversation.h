// The vicuna_v1 conversation template ("v1" in LLaVA's conversation.py), used by LLaVA-1.5:
//   SYSTEM + " " + "USER: q1 ASSISTANT: a1</s>USER: q2 ASSISTANT: a2</s>"
#pragma once

#include <string>
#include <vector>

#include "data/llava_json.h"

namespace sweep::data {

extern const char* const kVicunaSystem;  // "A chat between a curious user and ..."
extern const char* const kImageToken;    // "<image>"

// A turn's text after LLaVA's preprocess_multimodal: a value carrying <image> becomes
// "<image>\n" + (value with every <image> removed, then stripped of surrounding whitespace).
// Values without <image>, and every value of a text-only sample, are returned unchanged.
std::string move_image_token_to_front(const std::string& value);

// The turns the template sees: a leading non-human turn dropped, <image> moved to the front
// when `has_image`. Throws Failure (kUser) naming the sample when roles do not alternate.
std::vector<Turn> template_turns(const Sample& s, bool has_image);

// The vicuna_v1 prompt of turns that already alternate human/gpt.
std::string vicuna_v1_prompt_of(const std::vector<Turn>& turns);

// The whole prompt text of a sample, "</s>" markers included, as LLaVA builds it: a leading
// gpt turn is dropped, <image> is moved to the front of its turn when `s.image` is set.
// Throws Failure (kUser) naming the sample if roles do not alternate human/gpt.
std::string vicuna_v1_prompt(const Sample& s);

}  // namespace sweep::data
