// Normalising training-parameter values so that equal settings have one spelling (the basis of
// canonical_json and job_hash in sweep_spec.h).
#pragma once

#include <nlohmann/json.hpp>

#include "worker/protocol/train_params.h"

namespace sweep {

// One value of `spec`'s key in its canonical type: int keys hold integers (8.0 -> 8), number keys
// and pattern-map values hold doubles (16 -> 16.0), string lists are sorted and deduplicated
// (the order of target_modules does not change which layers get adapters). Values that do not
// fit the key's type are returned unchanged (validation reports them).
nlohmann::json normalise_param_value(const ParamSpec& spec, const nlohmann::json& value);

// FNV-1a 64 of `text` as 16 lowercase hex digits.
std::string fnv1a64_hex(const std::string& text);

}  // namespace sweep
