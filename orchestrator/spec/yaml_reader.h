// Reading a YAML document for validation: errors that point at "FILE:LINE:COL", mapping checks
// (unknown keys with a closest-key hint, duplicate keys, which yaml-cpp itself accepts), and the
// conversion of YAML values to JSON with YAML 1.2 core-schema typing (quoted scalars stay strings).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "common/result.h"

namespace sweep {

class YamlReader {
 public:
  explicit YamlReader(std::string source_name) : source_(std::move(source_name)) {}

  // A document may expand to at most this many nodes once its aliases are replaced by copies of
  // their anchored nodes (every walk of the document visits each copy).
  static constexpr uint64_t kMaxExpandedNodes = 100000;

  // Parses `text`; a syntax error comes back as "FILE:LINE:COL: YAML syntax error: ...", a
  // document past kMaxExpandedNodes (nested aliases) as an error at the alias that passes it,
  // before anything expands.
  Result<YAML::Node> load(const std::string& text) const;

  // A kUser error "SOURCE:LINE:COL: message" at the node (1-based line and column).
  Error error_at(const YAML::Node& node, const std::string& message, std::string hint = {}) const;
  Error error_at(const YAML::Mark& mark, const std::string& message, std::string hint = {}) const;

  // The first key that appears twice in any mapping of the document, as an error at its second
  // occurrence; ok when there is none.
  Status check_duplicate_keys(const YAML::Node& root) const;

  // `node` must be a mapping (a null node counts as an empty one when `null_is_empty`) whose keys
  // are all in `known`. `path` names the mapping in messages ("grid", "include[2]"; "" for the
  // top level). An unknown key's error names the closest known key.
  Status check_mapping(const YAML::Node& node, const std::string& path,
                       const std::vector<std::string>& known, bool null_is_empty = false) const;

  // The JSON value of a node. Plain scalars: null, true/false, integers, reals (1e-4 too), else
  // strings; quoted scalars and `!!str` are strings.
  static nlohmann::json to_json(const YAML::Node& node);
  // The value as written, for messages: the scalar text, or compact JSON of a collection.
  static std::string describe(const YAML::Node& node);
  // "path.key", or "key" when path is empty.
  static std::string join(const std::string& path, const std::string& key);

  const std::string& source() const { return source_; }

 private:
  Status check_alias_expansion(const std::string& text) const;

  std::string source_;
};

}  // namespace sweep
