// The early_stopping and budget sections: strict keys, counts of tokens with k/M/G suffixes,
// and the rungs they place.
#include "orchestrator/spec/stopping_spec.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <regex>

#include "orchestrator/spec/closest_key.h"

namespace sweep {
namespace {

const std::vector<std::string> kRules = {"asha", "median"};
const std::vector<std::string> kAshaKeys = {"type", "metric", "mode", "grace", "reduction_factor"};
const std::vector<std::string> kMedianKeys = {"type",  "metric",   "mode",
                                              "grace", "interval", "min_peers"};
const std::vector<std::string> kMetrics = {"val_loss", "val_token_acc", "val_exact_match"};
const std::vector<std::string> kBudgetKeys = {"max_jobs", "max_tokens", "max_steps"};
// Training tokens are counted in int64; more than this is a typo, not a plan.
constexpr double kMaxTokens = 1e15;

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return s;
}

Result<std::string> one_of(const YamlReader& yaml, const YAML::Node& node, const std::string& path,
                           const std::vector<std::string>& choices) {
  const std::string value = node.IsScalar() ? node.Scalar() : YamlReader::describe(node);
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return value;
  const std::string near = closest_key(value, choices);
  return yaml.error_at(node, path + " = " + value + ": must be one of " + join(choices),
                       near.empty() ? "" : "did you mean " + near + "?");
}

Result<int64_t> read_tokens(const YamlReader& yaml, const YAML::Node& node,
                            const std::string& path) {
  auto tokens = node.IsScalar() ? parse_token_count(node.Scalar()) : std::nullopt;
  if (!tokens || *tokens <= 0)
    return yaml.error_at(node,
                         path + " = " + YamlReader::describe(node) +
                             ": must be a positive number of training tokens",
                         "e.g. 20000, \"20k\" or \"1.5M\"; the worker's progress events report "
                         "tokens_seen, so tokens per step = tokens_seen / step");
  return *tokens;
}

Result<double> read_number(const YamlReader& yaml, const YAML::Node& node, const std::string& path,
                           double min_exclusive, const std::string& hint) {
  nlohmann::json v = YamlReader::to_json(node);
  if (!v.is_number() || !(v.get<double>() > min_exclusive) || !std::isfinite(v.get<double>()))
    return yaml.error_at(node,
                         path + " = " + YamlReader::describe(node) + ": must be a number > " +
                             std::to_string(static_cast<int>(min_exclusive)),
                         hint);
  return v.get<double>();
}

Result<int64_t> read_count(const YamlReader& yaml, const YAML::Node& node, const std::string& path,
                           int64_t min) {
  nlohmann::json v = YamlReader::to_json(node);
  const bool integral = v.is_number_integer() ||
                        (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  if (!integral || v.get<double>() < static_cast<double>(min) || v.get<double>() > kMaxTokens)
    return yaml.error_at(node, path + " = " + YamlReader::describe(node) +
                                   ": must be an integer >= " + std::to_string(min));
  return static_cast<int64_t>(v.get<double>());
}

}  // namespace

const char* to_string(EarlyStoppingSpec::Rule rule) {
  switch (rule) {
    case EarlyStoppingSpec::Rule::kAsha:
      return "asha";
    case EarlyStoppingSpec::Rule::kMedian:
      return "median";
    case EarlyStoppingSpec::Rule::kNone:
      break;
  }
  return "none";
}

std::optional<int64_t> parse_token_count(const std::string& text) {
  static const std::regex kCount(R"(\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+]?[0-9]+)?)\s*([kKMG]?)\s*)");
  std::smatch m;
  if (!std::regex_match(text, m, kCount)) return std::nullopt;
  double value = std::stod(m[1].str());
  const std::string unit = m[2].str();
  if (unit == "k" || unit == "K") value *= 1e3;
  if (unit == "M") value *= 1e6;
  if (unit == "G") value *= 1e9;
  if (value > kMaxTokens || value != std::floor(value)) return std::nullopt;
  return static_cast<int64_t>(value);
}

std::vector<int64_t> rung_tokens(const EarlyStoppingSpec& spec, int64_t limit_tokens) {
  std::vector<int64_t> rungs;
  if (!spec.enabled() || spec.grace_tokens <= 0) return rungs;
  for (int k = 0; k < kMaxRungs; ++k) {
    double at = spec.rule == EarlyStoppingSpec::Rule::kAsha
                    ? static_cast<double>(spec.grace_tokens) * std::pow(spec.reduction_factor, k)
                    : static_cast<double>(spec.grace_tokens) +
                          static_cast<double>(k) * static_cast<double>(spec.interval_tokens);
    if (at >= static_cast<double>(limit_tokens) || at > kMaxTokens) break;
    auto tokens = static_cast<int64_t>(std::llround(at));
    if (!rungs.empty() && tokens <= rungs.back()) break;
    rungs.push_back(tokens);
  }
  return rungs;
}

Status read_early_stopping(const YamlReader& yaml, const YAML::Node& node,
                           const Objective& objective, EarlyStoppingSpec& out) {
  out = EarlyStoppingSpec{};
  if (!node || node.IsNull()) return ok_status();
  const std::string example = "early_stopping: {type: asha, grace: 20k, reduction_factor: 3}";
  if (!node.IsMap())
    return yaml.error_at(node, "early_stopping must be a mapping", "e.g. " + example);
  const YAML::Node type = node["type"];
  if (!type) return yaml.error_at(node, "missing required key 'early_stopping.type'", example);
  auto rule = one_of(yaml, type, "early_stopping.type", kRules);
  if (!rule.ok()) return rule.error();
  const bool asha = *rule == "asha";
  SWEEP_RETURN_IF_ERROR(yaml.check_mapping(node, "early_stopping", asha ? kAshaKeys : kMedianKeys));
  out.rule = asha ? EarlyStoppingSpec::Rule::kAsha : EarlyStoppingSpec::Rule::kMedian;

  out.objective = objective;
  if (const YAML::Node metric = node["metric"]) {
    auto name = one_of(yaml, metric, "early_stopping.metric", kMetrics);
    if (!name.ok()) return name.error();
    out.objective.metric = *name;
    out.objective.mode = default_objective_mode(*name);
  }
  if (const YAML::Node mode = node["mode"]) {
    auto text = one_of(yaml, mode, "early_stopping.mode", {"min", "max"});
    if (!text.ok()) return text.error();
    out.objective.mode = *parse_objective_mode(*text);
  }

  const YAML::Node grace = node["grace"];
  if (!grace)
    return yaml.error_at(node, "missing required key 'early_stopping.grace'",
                         "the training tokens every job gets before it can be stopped, e.g. "
                         "grace: 20k");
  auto grace_tokens = read_tokens(yaml, grace, "early_stopping.grace");
  if (!grace_tokens.ok()) return grace_tokens.error();
  out.grace_tokens = *grace_tokens;

  if (asha) {
    if (const YAML::Node rf = node["reduction_factor"]) {
      auto v = read_number(yaml, rf, "early_stopping.reduction_factor", 1,
                           "each rung keeps the best 1/reduction_factor; 3 is usual");
      if (!v.ok()) return v.error();
      out.reduction_factor = *v;
    }
    return ok_status();
  }
  out.interval_tokens = out.grace_tokens;
  if (const YAML::Node interval = node["interval"]) {
    auto v = read_tokens(yaml, interval, "early_stopping.interval");
    if (!v.ok()) return v.error();
    out.interval_tokens = *v;
  }
  if (const YAML::Node peers = node["min_peers"]) {
    auto v = read_count(yaml, peers, "early_stopping.min_peers", 1);
    if (!v.ok()) return v.error();
    out.min_peers = static_cast<int>(*v);
  }
  return ok_status();
}

std::string format_token_count(int64_t tokens) {
  char buf[32];
  if (tokens >= 1'000'000 && tokens % 100'000 == 0) {
    std::snprintf(buf, sizeof buf, "%gM", static_cast<double>(tokens) / 1e6);
  } else if (tokens >= 1'000 && tokens % 100 == 0) {
    std::snprintf(buf, sizeof buf, "%gk", static_cast<double>(tokens) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(tokens));
  }
  return buf;
}

std::string stopping_summary(const SweepSpec& spec) {
  std::string out;
  const EarlyStoppingSpec& es = spec.early_stopping;
  if (es.enabled()) {
    constexpr int kShown = 4;
    std::vector<int64_t> rungs = rung_tokens(es, std::numeric_limits<int64_t>::max());
    out += std::string("early stopping: ") + to_string(es.rule) + " on " + es.objective.metric +
           " (" + to_string(es.objective.mode) + "): rungs at ";
    for (size_t i = 0; i < rungs.size() && i < kShown; ++i) {
      out += (i ? ", " : "") + format_token_count(rungs[i]);
    }
    out += rungs.size() > kShown ? ", ... training tokens" : " training tokens";
    if (es.rule == EarlyStoppingSpec::Rule::kAsha) {
      char factor[32];
      std::snprintf(factor, sizeof factor, "%g", es.reduction_factor);
      out += std::string("; each rung keeps the best 1/") + factor;
    } else {
      out += "; a job below the peers' median stops once " + std::to_string(es.min_peers) +
             " others were judged";
    }
    out += "\n";
  }
  const BudgetSpec& b = spec.budget;
  if (b.any()) {
    std::string caps;
    if (b.max_jobs > 0) caps += "max_jobs " + std::to_string(b.max_jobs);
    if (b.max_tokens > 0)
      caps += (caps.empty() ? "" : ", ") + ("max_tokens " + format_token_count(b.max_tokens));
    if (b.max_steps > 0)
      caps += (caps.empty() ? "" : ", ") + ("max_steps " + std::to_string(b.max_steps));
    out += "budget: " + caps + " (no job starts once a cap is reached)\n";
  }
  return out;
}

Status read_budget(const YamlReader& yaml, const YAML::Node& node, BudgetSpec& out) {
  out = BudgetSpec{};
  if (!node || node.IsNull()) return ok_status();
  SWEEP_RETURN_IF_ERROR(yaml.check_mapping(node, "budget", kBudgetKeys));
  if (const YAML::Node n = node["max_jobs"]) {
    auto v = read_count(yaml, n, "budget.max_jobs", 1);
    if (!v.ok()) return v.error();
    out.max_jobs = static_cast<int>(std::min<int64_t>(*v, 1000000000));
  }
  if (const YAML::Node n = node["max_tokens"]) {
    auto v = read_tokens(yaml, n, "budget.max_tokens");
    if (!v.ok()) return v.error();
    out.max_tokens = *v;
  }
  if (const YAML::Node n = node["max_steps"]) {
    auto v = read_count(yaml, n, "budget.max_steps", 1);
    if (!v.ok()) return v.error();
    out.max_steps = *v;
  }
  return ok_status();
}

}  // namespace sweep
