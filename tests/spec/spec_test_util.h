// Sweep-file text for the spec tests: a valid head (name, base_model, data) to which each test
// appends the sections it is about.
#pragma once

#include <string>

#include "orchestrator/spec/sweep_spec.h"

namespace sweep::testing {

// Lines 1-6 of every test file.
inline const std::string kHead =
    "name: t\n"
    "base_model: builtin:tiny-llava\n"
    "data:\n"
    "  train: builtin:shapes/vqa_train.json\n"
    "  val: builtin:shapes/vqa_val.json\n"
    "  image_folder: builtin:shapes/images\n";

inline Result<SweepSpec> parse(const std::string& body) {
  return parse_sweep_spec(kHead + body, "t.yaml");
}

// The error of a spec that must fail; an error-free parse yields an Error whose message says so.
inline Error parse_error(const std::string& body) {
  auto r = parse(body);
  if (r.ok()) return make_error(ErrorKind::kInternal, "(parsed without error)");
  return r.error();
}

}  // namespace sweep::testing
