#include "orchestrator/spec/param_reader.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "orchestrator/spec/closest_key.h"
#include "orchestrator/spec/job_identity.h"

namespace sweep {
namespace {

using json = nlohmann::json;

const std::vector<std::string> kDistributions = {"uniform", "loguniform", "choice"};
// Integer keys sampled from a range are cast to long long; no integer setting is near this.
constexpr double kMaxIntBound = 1e9;

bool is_numeric(const ParamSpec& spec) {
  return spec.type == ParamType::kInt || spec.type == ParamType::kNumber;
}

std::string join_list(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return s;
}

std::vector<std::string> axis_keys(const std::vector<GridAxis>& grid) {
  std::vector<std::string> keys;
  for (const GridAxis& a : grid) keys.push_back(a.key);
  return keys;
}

const GridAxis* find_axis(const std::vector<GridAxis>& grid, const std::string& key) {
  for (const GridAxis& a : grid)
    if (a.key == key) return &a;
  return nullptr;
}

std::string value_hint(const ParamSpec& spec, const json& value) {
  if (spec.type == ParamType::kEnum && value.is_string()) {
    std::string near = closest_key(value.get<std::string>(), spec.choices);
    if (!near.empty()) return "did you mean " + near + "?";
  }
  std::string hint = spec.name + ": " + spec.doc;
  if (!spec.default_value.is_null()) hint += "; default " + spec.default_value.dump();
  return hint;
}

// Whether a grid entry lists several values rather than giving one. A list-typed key
// (target_modules) takes a list of lists; a map-typed key (rank_pattern) a list of maps.
bool lists_values(const ParamSpec& spec, const YAML::Node& node) {
  if (!node.IsSequence()) return false;
  if (spec.type != ParamType::kStringList) return true;
  if (node.size() == 0) return true;
  for (const YAML::Node& e : node)
    if (!e.IsSequence()) return false;
  return true;
}

std::string format_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

const std::vector<std::string>& train_param_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const ParamSpec& s : train_param_specs()) n.push_back(s.name);
    return n;
  }();
  return names;
}

Result<json> ParamReader::read_value(const ParamSpec& spec, const YAML::Node& node,
                                     const std::string& path) const {
  json v = YamlReader::to_json(node);
  std::string err = check_param_value(spec, v);
  if (!err.empty()) {
    return yaml_.error_at(node, path + " = " + YamlReader::describe(node) + ": " + err,
                          value_hint(spec, v));
  }
  return normalise_param_value(spec, v);
}

Result<json> ParamReader::read_keyed(const YAML::Node& key, const YAML::Node& value,
                                     const std::string& path) const {
  const ParamSpec& spec = *find_param_spec(key.Scalar());
  if (value.IsNull()) {
    if (spec.default_value.is_null()) return json(nullptr);  // explicitly unset
    // Point at the key: yaml-cpp marks an empty value at the start of the next line.
    return yaml_.error_at(key, YamlReader::join(path, spec.name) + " has no value",
                          value_hint(spec, nullptr));
  }
  return read_value(spec, value, YamlReader::join(path, spec.name));
}

Result<json> ParamReader::read_train(const YAML::Node& node) const {
  SWEEP_RETURN_IF_ERROR(yaml_.check_mapping(node, "train", train_param_names(), true));
  json train = json::object();
  if (node.IsNull()) return train;
  for (auto it = node.begin(); it != node.end(); ++it) {
    auto v = read_keyed(it->first, it->second, "train");
    if (!v.ok()) return v.error();
    if (!v->is_null()) train[it->first.Scalar()] = std::move(*v);
  }
  return train;
}

Status ParamReader::read_values(const ParamSpec& spec, const YAML::Node& node,
                                const std::string& path, std::vector<json>& out) const {
  if (node.IsNull())
    return yaml_.error_at(node, path + " has no value", "give a value or a list of values");
  if (!lists_values(spec, node)) {
    auto v = read_value(spec, node, path);
    if (!v.ok()) return v.error();
    out.push_back(std::move(*v));
    return ok_status();
  }
  if (node.size() == 0)
    return yaml_.error_at(node, path + " is an empty list",
                          "give at least one value, or remove the key from grid:");
  for (size_t i = 0; i < node.size(); ++i) {
    auto v = read_value(spec, node[i], path + "[" + std::to_string(i) + "]");
    if (!v.ok()) return v.error();
    out.push_back(std::move(*v));
  }
  return ok_status();
}

Status ParamReader::read_range(const ParamSpec& spec, const YAML::Node& node,
                               const std::string& path, GridAxis& axis) const {
  const bool log = axis.draw == Draw::kLogUniform;
  const std::string hint = log ? "e.g. loguniform: [1.0e-4, 1.0e-2]: [low, high]"
                               : "e.g. uniform: [0.0, 0.1]: [low, high]";
  if (!node.IsSequence() || node.size() != 2)
    return yaml_.error_at(
        node, path + " = " + YamlReader::describe(node) + ": must be [low, high], two numbers",
        hint);
  double bound[2];
  for (size_t i = 0; i < 2; ++i) {
    const std::string at = path + "[" + std::to_string(i) + "] = " + YamlReader::describe(node[i]);
    json v = YamlReader::to_json(node[i]);
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      return yaml_.error_at(node[i], at + ": must be a number", hint);
    bound[i] = v.get<double>();
    if (log && bound[i] <= 0)
      return yaml_.error_at(node[i], at + ": a loguniform bound must be > 0",
                            "loguniform draws log(value) evenly; use uniform for a range that "
                            "reaches 0 or below");
  }
  if (bound[0] > bound[1])
    return yaml_.error_at(
        node, path + " = " + YamlReader::describe(node) + ": low is above high",
        "write the range as [low, high]: [" + node[1].Scalar() + ", " + node[0].Scalar() + "]");
  // Every value the range can give must be allowed for the key: the set of allowed values is an
  // interval, so checking the two ends is enough. An integer key takes the integers in the range.
  if (spec.type == ParamType::kInt) {
    if (std::fabs(bound[0]) > kMaxIntBound || std::fabs(bound[1]) > kMaxIntBound)
      return yaml_.error_at(node,
                            path + " = " + YamlReader::describe(node) +
                                ": an integer key's range must lie within ±1e9",
                            value_hint(spec, nullptr));
    bound[0] = std::ceil(bound[0]);
    bound[1] = std::floor(bound[1]);
    if (bound[0] > bound[1])
      return yaml_.error_at(node,
                            path + " = " + YamlReader::describe(node) + ": holds no integer, and " +
                                spec.name + " is an integer",
                            "widen the range to include a whole number");
  }
  for (size_t i = 0; i < 2; ++i) {
    const json value =
        spec.type == ParamType::kInt ? json(static_cast<long long>(bound[i])) : json(bound[i]);
    std::string err = check_param_value(spec, value);
    if (!err.empty())
      return yaml_.error_at(
          node[i],
          path + "[" + std::to_string(i) + "] = " + YamlReader::describe(node[i]) + ": " + err,
          value_hint(spec, value));
  }
  axis.low = YamlReader::to_json(node[0]).get<double>();
  axis.high = YamlReader::to_json(node[1]).get<double>();
  return ok_status();
}

Result<GridAxis> ParamReader::read_distribution(const ParamSpec& spec, const YAML::Node& node,
                                                const std::string& path) const {
  GridAxis axis{spec.name, {}, ""};
  if (node.size() != 1)
    return yaml_.error_at(node, path + " must give one distribution: uniform, loguniform or choice",
                          is_numeric(spec)
                              ? "e.g. " + spec.name + ": {loguniform: [1.0e-4, 1.0e-2]}"
                              : "e.g. " + spec.name + ": {choice: [a, b]}");
  const YAML::Node name_node = node.begin()->first;
  const YAML::Node value = node.begin()->second;
  const std::string name = name_node.Scalar();
  const std::string sub = path + "." + name;
  if (name == "choice") {
    SWEEP_RETURN_IF_ERROR(read_values(spec, value, sub, axis.values));
    return axis;
  }
  if (name == "uniform" || name == "loguniform") {
    if (!is_numeric(spec))
      return yaml_.error_at(name_node, sub + ": " + spec.name + " is not a number",
                            "give its values as {choice: [...]} or a list");
    axis.draw = name == "uniform" ? Draw::kUniform : Draw::kLogUniform;
    SWEEP_RETURN_IF_ERROR(read_range(spec, value, sub, axis));
    return axis;
  }
  std::string near = closest_key(name, kDistributions);
  return yaml_.error_at(name_node, "unknown distribution '" + name + "' in " + path,
                        near.empty() ? "distributions: uniform, loguniform, choice; or a link "
                                       "{times: KEY, values: [...]}"
                                     : "did you mean " + near + "?");
}

Result<GridAxis> ParamReader::read_axis(const ParamSpec& spec, const YAML::Node& node,
                                        const std::string& path, bool sampled) const {
  GridAxis axis{spec.name, {}, ""};
  // A mapping that is not a link is a distribution (a map-valued key's value is a mapping).
  if (node.IsMap() && spec.type != ParamType::kPatternMap && !node["times"] && !node["values"]) {
    if (sampled) return read_distribution(spec, node, path);
    const std::string name = node.size() > 0 ? node.begin()->first.Scalar() : "";
    if (std::find(kDistributions.begin(), kDistributions.end(), name) != kDistributions.end())
      return yaml_.error_at(
          node, path + ": " + name + " is a distribution, which needs search type random or sobol",
          "a grid takes every listed value: write a list such as [a, b], or "
          "add search: {type: sobol, n_trials: 16} to sample");
  }
  if (node.IsMap() && is_numeric(spec)) {  // linked: {times: KEY, values: [k1, k2, ...]}
    SWEEP_RETURN_IF_ERROR(yaml_.check_mapping(node, path, {"times", "values"}));
    const YAML::Node times = node["times"];
    const YAML::Node values = node["values"];
    if (!times || !times.IsScalar() || times.Scalar().empty())
      return yaml_.error_at(node, path + ": a link needs `times: KEY`",
                            "e.g. " + spec.name + ": {times: lora_r, values: [1, 2]}");
    if (!values || (values.IsSequence() && values.size() == 0) || values.IsNull())
      return yaml_.error_at(node, path + ".values is missing or empty",
                            "give the multipliers, e.g. values: [1, 2, 4]");
    axis.times = times.Scalar();
    std::vector<YAML::Node> items;
    if (values.IsSequence()) {
      for (const YAML::Node& e : values) items.push_back(e);
    } else {
      items.push_back(values);
    }
    for (size_t i = 0; i < items.size(); ++i) {
      json k = YamlReader::to_json(items[i]);
      if (!k.is_number())
        return yaml_.error_at(items[i],
                              path + ".values[" + std::to_string(i) +
                                  "] = " + YamlReader::describe(items[i]) +
                                  ": a multiplier must be a number",
                              spec.name + " = multiplier * " + axis.times);
      axis.values.push_back(k);
    }
    return axis;
  }
  SWEEP_RETURN_IF_ERROR(read_values(spec, node, path, axis.values));
  return axis;
}

Status ParamReader::resolve_link(GridAxis& axis, const YAML::Node& node,
                                 const std::vector<GridAxis>& grid, const json& train) const {
  const std::string path = "grid." + axis.key;
  const YAML::Node times = node["times"];
  if (axis.times == axis.key)
    return yaml_.error_at(times, path + ": times: " + axis.times + " links the key to itself",
                          "link to another grid key, e.g. times: lora_r");
  const GridAxis* base = find_axis(grid, axis.times);
  if (!base) {
    std::string hint;
    if (train.contains(axis.times)) {
      hint = axis.times + " is fixed in train:; move it into grid: or list " + axis.key +
             "'s values directly";
    } else {
      std::string near = closest_key(axis.times, axis_keys(grid));
      hint =
          near.empty() ? "grid keys: " + join_list(axis_keys(grid)) : "did you mean " + near + "?";
    }
    return yaml_.error_at(times, path + ": times: " + axis.times + " is not a grid key", hint);
  }
  if (base->linked())
    return yaml_.error_at(times, path + ": times: " + axis.times + " is itself linked",
                          "link to a plain grid key (one with a list of values)");
  if (!is_numeric(*find_param_spec(base->key)))
    return yaml_.error_at(times, path + ": times: " + axis.times + " is not a number",
                          "link to a numeric grid key such as lora_r");
  // Validate every product now, so expansion cannot fail on a bad linked value. A sampled range
  // is checked at its ends (a product of a range is a range).
  const ParamSpec& spec = *find_param_spec(axis.key);
  const YAML::Node values = node["values"];
  std::vector<json> base_values = base->values;
  if (base->continuous()) {
    const bool integer = find_param_spec(base->key)->type == ParamType::kInt;
    base_values = {integer ? std::ceil(base->low) : base->low,
                   integer ? std::floor(base->high) : base->high};
  }
  for (size_t i = 0; i < axis.values.size(); ++i) {
    const double k = axis.values[i].get<double>();
    if (base->continuous() && spec.type == ParamType::kInt && k != std::floor(k)) {
      const YAML::Node at = values.IsSequence() ? values[i] : values;
      return yaml_.error_at(at,
                            path + " = " + YamlReader::describe(at) + " × " + axis.times +
                                ": a fractional multiplier of a sampled range gives fractions, "
                                "and " +
                                axis.key + " is an integer",
                            "use whole multipliers, or give " + axis.times + " as a choice");
    }
    for (const json& b : base_values) {
      double product = axis.values[i].get<double>() * b.get<double>();
      std::string err = check_param_value(spec, normalise_param_value(spec, product));
      if (err.empty()) continue;
      const YAML::Node at = values.IsSequence() ? values[i] : values;
      return yaml_.error_at(at,
                            path + " = " + YamlReader::describe(at) + " × " + axis.times + " (" +
                                b.dump() + ") = " + format_number(product) + ": " + err,
                            value_hint(spec, product));
    }
  }
  return ok_status();
}

Result<std::vector<GridAxis>> ParamReader::read_grid(const YAML::Node& node, const json& train,
                                                     bool sampled) const {
  SWEEP_RETURN_IF_ERROR(yaml_.check_mapping(node, "grid", train_param_names(), true));
  std::vector<GridAxis> grid;
  if (node.IsNull()) return grid;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string key = it->first.Scalar();
    if (train.contains(key))
      return yaml_.error_at(it->first, "grid." + key + " is also fixed in train:",
                            "a key is either fixed (train:) or swept (grid:); remove one");
    auto axis = read_axis(*find_param_spec(key), it->second, "grid." + key, sampled);
    if (!axis.ok()) return axis.error();
    grid.push_back(std::move(*axis));
  }
  size_t i = 0;
  for (auto it = node.begin(); it != node.end(); ++it, ++i) {
    if (grid[i].linked()) SWEEP_RETURN_IF_ERROR(resolve_link(grid[i], it->second, grid, train));
  }
  return grid;
}

Result<std::vector<json>> ParamReader::read_include(const YAML::Node& node,
                                                    const std::vector<GridAxis>& grid) const {
  std::vector<json> points;
  if (node.IsNull()) return points;
  if (!node.IsSequence())
    return yaml_.error_at(node, "include must be a list of points",
                          "include:\n  - {lora_r: 32, lora_alpha: 64, learning_rate: 1.0e-4}");
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string path = "include[" + std::to_string(i) + "]";
    const YAML::Node elem = node[i];
    SWEEP_RETURN_IF_ERROR(yaml_.check_mapping(elem, path, train_param_names()));
    json point = json::object();
    for (auto it = elem.begin(); it != elem.end(); ++it) {
      auto v = read_keyed(it->first, it->second, path);
      if (!v.ok()) return v.error();
      if (!v->is_null()) point[it->first.Scalar()] = std::move(*v);
    }
    std::vector<std::string> missing;
    for (const GridAxis& a : grid)
      if (!point.contains(a.key)) missing.push_back(a.key);
    if (!missing.empty())
      return yaml_.error_at(
          elem, path + " lacks grid key" + (missing.size() > 1 ? "s " : " ") + join_list(missing),
          "an include point is a whole job: give every grid key a value");
    points.push_back(std::move(point));
  }
  return points;
}

Result<std::vector<json>> ParamReader::read_exclude(const YAML::Node& node,
                                                    const std::vector<GridAxis>& grid) const {
  std::vector<json> entries;
  if (node.IsNull()) return entries;
  if (!node.IsSequence())
    return yaml_.error_at(node, "exclude must be a list of partial points",
                          "exclude:\n  - {lora_r: 16, learning_rate: 3.0e-3}");
  const std::vector<std::string> keys = axis_keys(grid);
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string path = "exclude[" + std::to_string(i) + "]";
    const YAML::Node elem = node[i];
    if (!elem.IsMap() || elem.size() == 0)
      return yaml_.error_at(elem, path + " must be a non-empty mapping of grid keys to values",
                            "e.g. - {lora_r: 16, learning_rate: 3.0e-3}");
    json entry = json::object();
    for (auto it = elem.begin(); it != elem.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (!find_axis(grid, key)) {
        std::string near = closest_key(key, keys);
        return yaml_.error_at(it->first, path + "." + key + " is not a grid key",
                              near.empty() ? "exclude matches grid keys: " + join_list(keys)
                                           : "did you mean " + near + "?");
      }
      const ParamSpec& spec = *find_param_spec(key);
      json alternatives = json::array();
      if (lists_values(spec, it->second) && it->second.size() == 0) {
        return yaml_.error_at(it->second, path + "." + key + " is an empty list",
                              "give the value (or values) of the points to drop");
      } else if (lists_values(spec, it->second)) {
        for (size_t j = 0; j < it->second.size(); ++j) {
          auto v =
              read_value(spec, it->second[j], path + "." + key + "[" + std::to_string(j) + "]");
          if (!v.ok()) return v.error();
          alternatives.push_back(std::move(*v));
        }
      } else {
        auto v = read_value(spec, it->second, path + "." + key);
        if (!v.ok()) return v.error();
        alternatives.push_back(std::move(*v));
      }
      entry[key] = std::move(alternatives);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace sweep
