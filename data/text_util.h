// Small string helpers with Python's semantics where LLaVA's code relies on them.
#pragma once

#include <string>
#include <vector>

#include "data/llava_json.h"

namespace sweep::data {

// str.strip(): removes leading and trailing ASCII whitespace.
std::string strip(const std::string& s);
// str.replace(from, to) for every occurrence.
std::string replace_all(const std::string& s, const std::string& from, const std::string& to);
// str.split(sep): keeps empty parts ("a</s>".split("</s>") == ["a", ""]).
std::vector<std::string> split_all(const std::string& s, const std::string& sep);
size_t count_occurrences(const std::string& s, const std::string& needle);

}  // namespace sweep::data
