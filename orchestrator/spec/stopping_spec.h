// Reading the `early_stopping:` and `budget:` sections of a sweep file (docs/sweep-file.md).
// Part of the sweep-file parser (sweep_spec.cpp); kept apart because neither touches the grid.
#pragma once

#include <yaml-cpp/yaml.h>

#include "common/result.h"
#include "orchestrator/spec/sweep_spec.h"
#include "orchestrator/spec/yaml_reader.h"

namespace sweep {

// `node` is the section (absent or null: nothing to read). `objective` is the sweep's, read
// before: early stopping judges it unless the section names another metric.
Status read_early_stopping(const YamlReader& yaml, const YAML::Node& node,
                           const Objective& objective, EarlyStoppingSpec& out);
Status read_budget(const YamlReader& yaml, const YAML::Node& node, BudgetSpec& out);

// What `sweep plan` says about early stopping and the budget, one line each ("" for neither),
// e.g. "early stopping: asha on val_loss (min): rungs at 15k, 45k, 135k, 405k, ... training
// tokens; each rung keeps the best 1/3".
std::string stopping_summary(const SweepSpec& spec);

// A count of tokens as a sweep file would write it: 15000 -> "15k", 1500000 -> "1.5M", 12345 ->
// "12345" (exact: a suffix only when it loses nothing past one decimal).
std::string format_token_count(int64_t tokens);

// A count of tokens as written in a sweep file: an integer, or a number with a k/M/G suffix
// ("20k", "1.5M"). nullopt when `text` is neither.
std::optional<int64_t> parse_token_count(const std::string& text);

}  // namespace sweep
