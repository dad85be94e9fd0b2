// Normalising training-parameter values so that equal settings have one spelling (the basis of
// canonical_json and job_hash in sweep_spec.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "protocol/train_params.h"

namespace sweep {

// One value of `spec`'s key in its canonical type: int keys hold integers (8.0 -> 8), number keys
// and pattern-map values hold doubles (16 -> 16.0), string lists are sorted and deduplicated
// (the order of target_modules does not change which layers get adapters). Values that do not
// fit the key's type are returned unchanged (validation reports them).
nlohmann::json normalise_param_value(const ParamSpec& spec, const nlohmann::json& value);

struct SweepSpec;

// job_hash in two parts, for hashing many jobs of one spec: the canonical text that precedes the
// params (base model and data), and the hash of prefix + params that are already normalised.
// job_hash(spec, p) == job_hash_with_prefix(identity_prefix(spec), normalise_params(p)).
std::string identity_prefix(const SweepSpec& spec);
std::string job_hash_with_prefix(const std::string& prefix,
                                 const nlohmann::json& normalised_params);

// FNV-1a 64 of `text` as 16 lowercase hex digits.
std::string fnv1a64_hex(const std::string& text);

}  // namespace sweep
