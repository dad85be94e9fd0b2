// The sweep spec as JSON: what the sweeps table stores and `sweep plan --format json` shows.
#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

nlohmann::json spec_to_json(const SweepSpec& spec) {
  using json = nlohmann::json;
  json grid = json::array();  // an array keeps the file's axis order (the expansion order)
  for (const GridAxis& axis : spec.grid) {
    json a = {{"key", axis.key}};
    if (axis.continuous())
      a[axis.draw == Draw::kLogUniform ? "loguniform" : "uniform"] = {axis.low, axis.high};
    else
      a["values"] = axis.values;
    if (axis.linked()) a["times"] = axis.times;
    grid.push_back(std::move(a));
  }
  json search = {{"type", to_string(spec.search.type)}};
  if (spec.search.sampled()) {
    search["n_trials"] = spec.search.n_trials;
    search["seed"] = spec.search.seed;
  }
  json resources = {{"threads_per_job", spec.resources.threads_per_job}};
  if (spec.resources.uses_gpus()) {
    resources["gpus"] = spec.resources.gpus;
    resources["jobs_per_gpu"] = spec.resources.jobs_per_gpu;
  } else {
    resources["slots"] = spec.resources.slots;
  }
  if (spec.resources.pack != 1) resources["pack"] = spec.resources.pack;
  if (spec.resources.executor == ExecutorKind::kSlurm) {
    const SlurmSpec& s = spec.resources.slurm;
    resources["executor"] = to_string(spec.resources.executor);
    resources["slurm"] = {{"partition", s.partition},
                          {"account", s.account},
                          {"qos", s.qos},
                          {"mem", s.mem},
                          {"time_limit", s.time_limit},
                          {"gpus_per_job", s.gpus_per_job},
                          {"cpus_per_job", s.cpus_per_job},
                          {"sbatch_args", s.sbatch_args},
                          {"max_submitted", s.max_submitted}};
  }
  json out = {
      {"name", spec.name},
      {"source_path", spec.source_path},
      {"base_model", spec.base_model},
      {"data",
       {{"train", spec.data.train},
        {"val", spec.data.val},
        {"image_folder", spec.data.image_folder},
        {"max_image_pixels", spec.data.max_image_pixels}}},
      {"train", spec.train},
      {"search", search},
      {"grid", grid},
      {"include", spec.include},
      {"exclude", spec.exclude},
      {"objective", {{"metric", spec.objective.metric}, {"mode", to_string(spec.objective.mode)}}},
      {"resources", resources},
      {"retries", spec.retries},
      {"max_job_time_s", spec.max_job_time_s},
      {"worker", {{"command", spec.worker_command}}},
  };
  const EarlyStoppingSpec& es = spec.early_stopping;
  if (es.enabled()) {
    json e = {{"type", to_string(es.rule)},
              {"metric", es.objective.metric},
              {"mode", to_string(es.objective.mode)},
              {"grace_tokens", es.grace_tokens}};
    if (es.rule == EarlyStoppingSpec::Rule::kAsha) {
      e["reduction_factor"] = es.reduction_factor;
    } else {
      e["interval_tokens"] = es.interval_tokens;
      e["min_peers"] = es.min_peers;
    }
    out["early_stopping"] = std::move(e);
  }
  if (spec.budget.any()) {
    out["budget"] = {{"max_jobs", spec.budget.max_jobs},
                     {"max_tokens", spec.budget.max_tokens},
                     {"max_steps", spec.budget.max_steps}};
  }
  return out;
}

}  // namespace sweep
