// "Did you mean ...?" for misspelt keys: the known key nearest to a word by edit distance.
#pragma once

#include <string>
#include <vector>

namespace sweep {

// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
// adjacent characters each cost 1 (so "lora_alpah" is 1 away from "lora_alpha").
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate nearest to `word`, or "" when none is close enough to be a plausible typo
// (distance at most max(2, word.size() / 3)). Ties go to the earlier candidate.
std::string closest_key(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace sweep
