// `sweep plan SPEC.yaml [--format table|csv|json]`: the jobs a sweep file expands to, with their
// hash, LoRA settings and scale, and duplicates flagged, how resources.pack would group them, and
// the guidance warnings of `sweep lint`, and each job's estimated peak memory against what a slot
// has; nothing is recorded or run.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "common/failure.h"
#include "data/builtin.h"
#include "orchestrator/cli/commands.h"
#include "orchestrator/cli/output.h"
#include "orchestrator/cli/warning_output.h"
#include "orchestrator/run/slot_memory.h"
#include "orchestrator/spec/lora_target_check.h"
#include "orchestrator/spec/stopping_spec.h"
#include "orchestrator/spec/sweep_spec.h"
#include "protocol/memory_estimate.h"
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

// Each job's estimated peak memory (protocol/memory_estimate.h) against what one slot has.
// Without the base model's config.json (a builtin: model `sweep run` has not made yet) there
// are no estimates, and `unavailable` says why.
struct MemoryPlan {
  std::vector<std::optional<MemoryEstimate>> per_job;  // in job order
  SlotMemory slot;
  std::string unavailable;
  bool fits(const MemoryEstimate& e) const { return slot.bytes == 0 || e.total() <= slot.bytes; }
};

std::string model_config_path(const SweepSpec& spec) {
  if (data::is_builtin(spec.base_model))
    return data::builtin_model_dir(spec.base_model) + "/config.json";
  return spec.base_model + "/config.json";
}

MemoryPlan plan_memory(const SweepSpec& spec, const std::vector<ExpandedJob>& jobs) {
  MemoryPlan plan;
  plan.per_job.resize(jobs.size());
  auto config_path = capture([&] { return model_config_path(spec); });
  if (!config_path.ok()) {
    plan.unavailable = config_path.error().message;
    return plan;
  }
  const std::string path = *config_path;
  std::ifstream in(path);
  if (!in) {
    plan.unavailable = data::is_builtin(spec.base_model)
                           ? spec.base_model + " is not made yet (sweep run makes it)"
                           : "cannot read " + path;
    return plan;
  }
  auto shape = capture([&] { return ModelShape::from_config(nlohmann::json::parse(in), path); });
  if (!shape.ok()) {
    plan.unavailable = shape.error().message;
    return plan;
  }
  const std::string device = spec.resources.uses_gpus() ? "cuda" : "cpu";
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto params = capture([&] { return TrainParams::from_json(jobs[i].params); });
    if (params.ok()) plan.per_job[i] = estimate_memory(*shape, *params, device);
  }
  plan.slot = slot_memory(spec.resources);
  return plan;
}

// The `does-not-fit` warning, beside the guidance warnings (docs/running.md, "Memory").
std::optional<Warning> memory_warning(const std::vector<ExpandedJob>& jobs,
                                      const MemoryPlan& plan) {
  Warning w;
  int64_t largest = 0;
  int counted = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].is_duplicate() || !plan.per_job[i]) continue;
    ++counted;
    if (plan.fits(*plan.per_job[i])) continue;
    w.job_hashes.push_back(jobs[i].hash);
    largest = std::max(largest, plan.per_job[i]->total());
  }
  if (w.job_hashes.empty()) return std::nullopt;
  w.id = "does-not-fit";
  w.message = "estimated peak memory above the slot's " + format_bytes(plan.slot.bytes) + " (" +
              plan.slot.source + ") in " + std::to_string(w.job_hashes.size()) + " of " +
              std::to_string(counted) + " jobs: up to " + format_bytes(largest);
  w.reason =
      "the estimate pads every sample to model_max_length, so short samples may still fit; a "
      "job that runs out of memory ends `infeasible`. Lower batch_size (raise "
      "gradient_accumulation_steps to keep the global batch), set gradient_checkpointing: true, "
      "or lower model_max_length";
  w.source = "protocol/memory_estimate.h (weights, AdamW state, activations, logits)";
  return w;
}

std::string memory_summary(const MemoryPlan& plan) {
  if (!plan.unavailable.empty()) return "memory: no estimate: " + plan.unavailable + "\n";
  const MemoryEstimate* largest = nullptr;
  for (const auto& e : plan.per_job) {
    if (e && (!largest || e->total() > largest->total())) largest = &*e;
  }
  if (!largest) return "";
  std::string line = "memory: largest job " + describe_estimate(*largest);
  if (plan.slot.bytes > 0) {
    line += "; a slot has " + format_bytes(plan.slot.bytes) + " (" + plan.slot.source + ")";
  } else {
    line += "; a slot's memory is unknown (" + plan.slot.source + ")";
  }
  return line + "\n";
}

nlohmann::json estimate_to_json(const MemoryEstimate& e, bool fits) {
  return {{"total", e.total()},
          {"weights", e.weights},
          {"trainable", e.trainable},
          {"activations", e.activations},
          {"logits", e.logits},
          {"runtime", e.runtime},
          {"sequence_length", e.sequence_length},
          {"fits", fits}};
}

// JSON: {"jobs": [...], "warnings": [...]}. Table and CSV: the guidance warnings follow on
// stderr, so that stdout stays the plan alone.
void print_plan(const SweepSpec& spec, const std::vector<ExpandedJob>& jobs, OutputFormat format) {
  std::vector<Warning> warnings = guidance_warnings(spec, jobs);
  const MemoryPlan memory = plan_memory(spec, jobs);
  if (auto w = memory_warning(jobs, memory)) warnings.push_back(std::move(*w));
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
    for (size_t i = 0; i < jobs.size(); ++i) {
      json j = job_to_json(jobs[i]);
      const auto& e = memory.per_job[i];
      j["memory"] = e ? estimate_to_json(*e, memory.fits(*e)) : json(nullptr);
      out["jobs"].push_back(std::move(j));
    }
    if (memory.slot.bytes > 0) {
      out["slot_memory"] = {{"bytes", memory.slot.bytes}, {"source", memory.slot.source}};
    }
    std::cout << out.dump(2) << "\n";
    return;
  }
  const std::vector<std::string> extra = extra_grid_keys(spec);
  std::vector<std::string> columns = {"index", "hash",          "lora_r",    "lora_alpha",
                                      "scale", "learning_rate", "batch_size"};
  columns.insert(columns.end(), extra.begin(), extra.end());
  columns.push_back("memory");
  columns.push_back("duplicate_of");
  std::vector<Row> rows;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const ExpandedJob& job = jobs[i];
    Row row = {Cell::num(static_cast<long long>(job.index)),
               Cell::str(job.hash),
               cell_of(job.params.at("lora_r")),
               cell_of(job.params.at("lora_alpha")),
               Cell::num(job.lora_scale),
               cell_of(job.params.at("learning_rate")),
               cell_of(job.params.at("batch_size"))};
    for (const std::string& key : extra) row.push_back(cell_of(job.params.at(key)));
    const auto& e = memory.per_job[i];
    if (!e) {
      row.push_back(Cell::null());
    } else if (format == OutputFormat::kCsv) {
      row.push_back(Cell::num(static_cast<long long>(e->total())));
    } else {
      row.push_back(Cell::str(format_bytes(e->total()) + (memory.fits(*e) ? "" : " !")));
    }
    row.push_back(job.is_duplicate() ? Cell::str(job.duplicate_of) : Cell::null());
    rows.push_back(std::move(row));
  }
  print_rows(std::cout, columns, rows, format);
  if (format == OutputFormat::kTable) {
    std::cout << expansion_summary(spec, jobs) << "\n"
              << stopping_summary(spec) << packing_summary(spec, plan_packs(spec, jobs))
              << memory_summary(memory);
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
