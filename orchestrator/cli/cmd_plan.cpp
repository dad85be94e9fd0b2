// `sweep plan SPEC.yaml [--format table|csv|json]`: the jobs a sweep file expands to, with their
// hash, LoRA settings and scale, and duplicates flagged, how resources.pack would group them, and
// the guidance warnings of `sweep lint`; nothing is recorded or run.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>

#include "common/failure.h"
#include "data/builtin.h"
#include "orchestrator/cli/commands.h"
#include "orchestrator/cli/output.h"
#include "orchestrator/cli/warning_output.h"
#include "orchestrator/spec/lora_target_check.h"
#include "orchestrator/spec/stopping_spec.h"
#include "orchestrator/spec/sweep_spec.h"
#include "protocol/pack.h"

namespace sweep {
namespace {

using json = nlohmann::json;

const std::vector<std::string> kCoreKeys = {"lora_r", "lora_alpha", "learning_rate", "batch_size"};

Cell cell_of(const json& v) {
  if (v.is_null()) return Cell::null();
  if (v.is_number_integer()) return Cell::num(v.get<long long>());
  if (v.is_number()) return Cell::num(v.get<double>());
  if (v.is_string()) return Cell::str(v.get<std::string>());
  return Cell::str(v.dump());
}

// Grid keys other than the four core ones, in file order: they get a column each.
std::vector<std::string> extra_grid_keys(const SweepSpec& spec) {
  std::vector<std::string> keys;
  for (const GridAxis& axis : spec.grid) {
    if (std::find(kCoreKeys.begin(), kCoreKeys.end(), axis.key) == kCoreKeys.end())
      keys.push_back(axis.key);
  }
  return keys;
}

json job_to_json(const ExpandedJob& job) {
  json j = {{"index", job.index}, {"hash", job.hash}, {"lora_scale", job.lora_scale}};
  for (const std::string& key : kCoreKeys) j[key] = job.params.at(key);
  j["duplicate_of"] = job.is_duplicate() ? json(job.duplicate_of) : json(nullptr);
  j["params"] = job.params;
  return j;
}

// How resources.pack would group the jobs (duplicates left out): compatible groups, jobs that
// always run alone, and the fewest worker processes that covers them.
struct PackPlan {
  int jobs = 0;
  int groups = 0;
  int alone = 0;
  int workers = 0;
};

PackPlan plan_packs(const SweepSpec& spec, const std::vector<ExpandedJob>& jobs) {
  PackPlan plan;
  std::map<std::string, int> group_sizes;  // pack key -> jobs
  for (const ExpandedJob& job : jobs) {
    if (job.is_duplicate()) continue;
    ++plan.jobs;
    JobFile file;  // base model, data and device are the sweep's: the params decide
    file.params = job.params;
    if (!packable(file)) {
      ++plan.alone;
      continue;
    }
    ++group_sizes[pack_key(file).dump()];
  }
  plan.groups = static_cast<int>(group_sizes.size());
  plan.workers = plan.alone;
  const int k = std::max(1, spec.resources.pack);
  for (const auto& [key, n] : group_sizes) plan.workers += (n + k - 1) / k;
  return plan;
}

std::string packing_summary(const SweepSpec& spec, const PackPlan& plan) {
  if (spec.resources.pack <= 1) return "";
  std::string line = "packing: packs of up to " + std::to_string(spec.resources.pack) +
                     " jobs per worker; " + std::to_string(plan.jobs - plan.alone) + " jobs in " +
                     std::to_string(plan.groups) + " compatible group(s)";
  if (plan.alone > 0)
    line += ", " + std::to_string(plan.alone) + " run alone (mode full or lora_vision_tower)";
  return line + "; at least " + std::to_string(plan.workers) + " worker process(es)\n";
}

// JSON: {"jobs": [...], "warnings": [...]}. Table and CSV: the guidance warnings follow on
// stderr, so that stdout stays the plan alone.
void print_plan(const SweepSpec& spec, const std::vector<ExpandedJob>& jobs, OutputFormat format) {
  const std::vector<Warning> warnings = guidance_warnings(spec, jobs);
  if (format == OutputFormat::kJson) {
    json out = {{"jobs", json::array()}, {"warnings", warnings_to_json(warnings)}};
    if (spec.resources.pack > 1) {
      PackPlan plan = plan_packs(spec, jobs);
      out["packing"] = {{"pack", spec.resources.pack},
                        {"jobs", plan.jobs},
                        {"groups", plan.groups},
                        {"alone", plan.alone},
                        {"workers", plan.workers}};
    }
    for (const ExpandedJob& job : jobs) out["jobs"].push_back(job_to_json(job));
    std::cout << out.dump(2) << "\n";
    return;
  }
  const std::vector<std::string> extra = extra_grid_keys(spec);
  std::vector<std::string> columns = {"index", "hash",          "lora_r",    "lora_alpha",
                                      "scale", "learning_rate", "batch_size"};
  columns.insert(columns.end(), extra.begin(), extra.end());
  columns.push_back("duplicate_of");
  std::vector<Row> rows;
  for (const ExpandedJob& job : jobs) {
    Row row = {Cell::num(static_cast<long long>(job.index)),
               Cell::str(job.hash),
               cell_of(job.params.at("lora_r")),
               cell_of(job.params.at("lora_alpha")),
               Cell::num(job.lora_scale),
               cell_of(job.params.at("learning_rate")),
               cell_of(job.params.at("batch_size"))};
    for (const std::string& key : extra) row.push_back(cell_of(job.params.at(key)));
    row.push_back(job.is_duplicate() ? Cell::str(job.duplicate_of) : Cell::null());
    rows.push_back(std::move(row));
  }
  print_rows(std::cout, columns, rows, format);
  if (format == OutputFormat::kTable) {
    std::cout << expansion_summary(spec, jobs) << "\n"
              << stopping_summary(spec) << packing_summary(spec, plan_packs(spec, jobs));
  }
  std::cout.flush();  // the warnings come after the plan on a terminal
  print_warnings_text(std::cerr, warnings);
}

}  // namespace

void add_plan_command(CLI::App& app, CliContext& ctx) {
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "Show the jobs a sweep file expands to (hash, r, alpha, scale, lr, batch size); "
      "nothing is run");
  auto spec_path = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  cmd->add_option("SPEC", *spec_path, "sweep file (YAML)")->required();
  cmd->add_option("--format", *format,
                  "table, csv or json (json: every job with full params, and the warnings)");
  cmd->callback([&ctx, spec_path, format] {
    auto fmt = parse_output_format(*format);
    if (!fmt.ok()) return ctx.fail(fmt.error());
    auto spec = load_sweep_spec(*spec_path);
    if (!spec.ok()) return ctx.fail(spec.error());
    auto jobs = expand_grid(*spec);
    if (!jobs.ok()) return ctx.fail(jobs.error());
    // The LoRA targets on the base model's tensor names, when its files are here already.
    std::string model_dir = spec->base_model;
    if (data::is_builtin(model_dir)) {
      auto dir = capture([&] { return data::builtin_model_dir(spec->base_model); });
      model_dir = dir.ok() ? *dir : "";
    }
    Status targets = check_lora_targets_if_present(*spec, model_dir);
    if (!targets.ok()) return ctx.fail(targets.error());
    print_plan(*spec, *jobs, *fmt);
  });
}

}  // namespace sweep
