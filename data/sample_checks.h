// Structural validation of LLaVA samples, shared by load_llava_json (strict) and check_data
// (full report). Nothing here opens an image or tokenises.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/check_data.h"
#include "data/llava_json.h"

namespace sweep::data {

// Streams the top-level array of `path` and calls `on_element(index, element)` for each of
// its elements as soon as it is parsed (the element may be moved from; it is dropped after the
// call), so at most one sample's JSON tree is in memory. File-level problems (file_unreadable,
// invalid_json, not_an_array) are appended to `problems`. Returns the number of elements.
int64_t for_each_array_element(const std::string& path,
                               const std::function<void(int64_t, nlohmann::json&)>& on_element,
                               std::vector<DataProblem>* problems);

// Checks one element of the array and appends its problems. Fills `*out` with what could be
// read (strings moved out of `element`); returns true when the sample has no error.
bool check_sample(nlohmann::json& element, int64_t index, std::vector<DataProblem>* problems,
                  Sample* out);

// "sample 12 (id 000012): <message> (hint: <hint>)"; no "sample" part for file-level problems.
std::string describe(const DataProblem& p);

}  // namespace sweep::data
