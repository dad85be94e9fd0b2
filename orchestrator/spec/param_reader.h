// Reading the training-parameter sections of a sweep file (`train:`, `grid:`, `include:`,
// `exclude:`) against the parameter table of protocol/train_params.h, which alone knows the
// keys, their types, bounds and defaults.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "orchestrator/spec/sweep_spec.h"
#include "orchestrator/spec/yaml_reader.h"
#include "protocol/train_params.h"

namespace sweep {

class ParamReader {
 public:
  explicit ParamReader(const YamlReader& yaml) : yaml_(yaml) {}

  // `train:`: a mapping of fixed keys; values validated and normalised. Null node = empty.
  Result<nlohmann::json> read_train(const YAML::Node& node) const;
  // `grid:`: one axis per key, in file order; `train` is needed to reject keys set in both.
  // `sampled` (search type random or sobol) allows the distribution forms ({uniform: [lo, hi]},
  // {loguniform: [lo, hi]}, {choice: [...]}); under grid they are an error.
  Result<std::vector<GridAxis>> read_grid(const YAML::Node& node, const nlohmann::json& train,
                                          bool sampled = false) const;
  // `include:`: a list of whole points; each must give every grid key.
  Result<std::vector<nlohmann::json>> read_include(const YAML::Node& node,
                                                   const std::vector<GridAxis>& grid) const;
  // `exclude:`: a list of partial points over grid keys. Stored as {key: [alternatives]}: a job
  // is dropped when, for every key of one entry, its value is one of the alternatives.
  Result<std::vector<nlohmann::json>> read_exclude(const YAML::Node& node,
                                                   const std::vector<GridAxis>& grid) const;

  // One value of a key: validated against the table, normalised (job_identity.h).
  Result<nlohmann::json> read_value(const ParamSpec& spec, const YAML::Node& node,
                                    const std::string& path) const;

 private:
  // A `key: value` of train:/include:, validated; null when the key is explicitly unset.
  Result<nlohmann::json> read_keyed(const YAML::Node& key, const YAML::Node& value,
                                    const std::string& path) const;
  Result<GridAxis> read_axis(const ParamSpec& spec, const YAML::Node& node, const std::string& path,
                             bool sampled) const;
  // A list of values (a choice): one value, or each element of a list.
  Status read_values(const ParamSpec& spec, const YAML::Node& node, const std::string& path,
                     std::vector<nlohmann::json>& out) const;
  // `{uniform: [lo, hi]}`, `{loguniform: [lo, hi]}` or `{choice: [...]}` (sampled search only).
  Result<GridAxis> read_distribution(const ParamSpec& spec, const YAML::Node& node,
                                     const std::string& path) const;
  Status read_range(const ParamSpec& spec, const YAML::Node& node, const std::string& path,
                    GridAxis& axis) const;
  Status resolve_link(GridAxis& axis, const YAML::Node& node, const std::vector<GridAxis>& grid,
                      const nlohmann::json& train) const;

  const YamlReader& yaml_;
};

// Every key of the parameter table, in table order (the known keys of train:/grid:).
const std::vector<std::string>& train_param_names();

}  // namespace sweep
