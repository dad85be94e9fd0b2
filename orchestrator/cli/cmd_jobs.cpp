// `sweep jobs [SWEEP] [--state S]`: one line per job with its hyperparameters, state, best
// objective so far, with packed workers the pack of its current or last attempt, and, with early
// stopping, its latest rung and verdict; a failed, diverged or infeasible job's first error line.
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "db/store.h"
#include "orchestrator/cli/commands.h"
#include "orchestrator/cli/job_error.h"
#include "orchestrator/cli/output.h"

namespace sweep {

namespace {

struct JobsOptions {
  std::string sweep;
  std::string state;
  std::string format = "table";
};

constexpr size_t kTableErrorChars = 100;  // CSV and JSON carry the whole first line

constexpr const char* kParamColumns[] = {"lora_r", "lora_alpha", "learning_rate", "batch_size"};

Cell json_cell(const nlohmann::json& params, const char* key) {
  if (!params.is_object() || !params.contains(key)) return Cell::null();
  const nlohmann::json& v = params[key];
  if (v.is_number_integer()) return Cell::num(v.get<long long>());
  if (v.is_number()) return Cell::num(v.get<double>());
  return Cell::str(v.is_string() ? v.get<std::string>() : v.dump());
}

Result<std::optional<JobState>> parse_state_flag(const std::string& text) {
  if (text.empty()) return std::optional<JobState>();
  auto state = parse_job_state(text);
  if (!state) {
    std::string known;
    for (JobState s : all_job_states())
      known += (known.empty() ? "" : ", ") + std::string(to_string(s));
    return make_error(ErrorKind::kUser, "--state '" + text + "' is not a job state",
                      "use one of: " + known);
  }
  return std::optional<JobState>(*state);
}

Status run_jobs(const CliContext& ctx, const JobsOptions& opts) {
  auto format = parse_output_format(opts.format);
  if (!format.ok()) return format.error();
  auto state = parse_state_flag(opts.state);
  if (!state.ok()) return state.error();
  auto store = Store::open_readonly(ctx.db_path());
  if (!store.ok()) return store.error();
  auto sweep = (*store)->resolve_sweep(opts.sweep);
  if (!sweep.ok()) return sweep.error();
  auto jobs = (*store)->list_jobs(sweep->id, *state);
  if (!jobs.ok()) return jobs.error();
  Objective objective = sweep->objective();
  auto best = (*store)->best_objectives(sweep->id, objective.metric, objective.maximize());
  if (!best.ok()) return best.error();
  // Early stopping: each job's latest verdict ("stop, rank 3 of 3" at its rung).
  auto decisions = (*store)->decisions(sweep->id);
  if (!decisions.ok()) return decisions.error();
  std::map<int64_t, RungDecision> latest;
  for (const RungDecision& d : *decisions) latest[d.job_id] = d;
  // Packs: the worker process each job's current or last attempt shared with others.
  auto packs = (*store)->latest_pack_ids(sweep->id);
  if (!packs.ok()) return packs.error();
  // Cluster executors: the Slurm job id of each job's current or last attempt.
  auto executor_ids = (*store)->latest_executor_ids(sweep->id);
  if (!executor_ids.ok()) return executor_ids.error();

  std::vector<std::string> columns = {"id", "hash", "state", "attempt"};
  if (!packs->empty()) columns.push_back("pack");
  if (!executor_ids->empty()) columns.push_back("executor_id");
  for (const char* key : kParamColumns) columns.push_back(key);
  columns.push_back("best_" + objective.metric);
  if (!decisions->empty()) {
    columns.push_back("rung");
    columns.push_back("decision");
  }
  columns.push_back("run_dir");
  // Why each failed, diverged or infeasible job ended: always a field in CSV and JSON, a column
  // of the table once some job has one.
  const bool table = *format == OutputFormat::kTable;
  bool any_error = !table;
  for (const JobRecord& job : *jobs) any_error = any_error || !job_error_line(job).empty();
  if (any_error) columns.push_back("error");
  std::vector<Row> rows;
  for (const JobRecord& job : *jobs) {
    nlohmann::json params = nlohmann::json::parse(job.params_json, nullptr, false);
    Row row = {Cell::num(static_cast<long long>(job.id)), Cell::str(job.hash),
               Cell::str(to_string(job.state)), Cell::num(static_cast<long long>(job.attempt))};
    if (!packs->empty()) {
      auto p = packs->find(job.id);
      row.push_back(p == packs->end() ? Cell::null()
                                      : Cell::num(static_cast<long long>(p->second)));
    }
    if (!executor_ids->empty()) {
      auto e = executor_ids->find(job.id);
      row.push_back(e == executor_ids->end() ? Cell::null() : Cell::str(e->second));
    }
    for (const char* key : kParamColumns) row.push_back(json_cell(params, key));
    auto it = best->find(job.id);
    row.push_back(it == best->end() ? Cell::null() : Cell::num(it->second));
    if (!decisions->empty()) {
      auto d = latest.find(job.id);
      if (d == latest.end()) {
        row.push_back(Cell::null());
        row.push_back(Cell::null());
      } else {
        row.push_back(Cell::num(static_cast<long long>(d->second.rung)));
        row.push_back(Cell::str(d->second.action + ", rank " + std::to_string(d->second.rank) +
                                " of " + std::to_string(d->second.peers)));
      }
    }
    row.push_back(job.run_dir.empty() ? Cell::null() : Cell::str(job.run_dir));
    if (any_error) {
      const std::string error = job_error_line(job, table ? kTableErrorChars : 0);
      row.push_back(error.empty() ? Cell::null() : Cell::str(error));
    }
    rows.push_back(std::move(row));
  }
  print_rows(std::cout, columns, rows, *format);
  return ok_status();
}

}  // namespace

void add_jobs_command(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<JobsOptions>();
  CLI::App* cmd = app.add_subcommand("jobs", "List the jobs of a sweep, one line each");
  cmd->add_option("sweep", opts->sweep, "sweep name (default: the only sweep in the database)");
  cmd->add_option("--state", opts->state,
                  "only jobs in this state: pending, running, succeeded, failed, diverged, "
                  "cancelled, lost, pruned");
  cmd->add_option("--format", opts->format, "table, csv or json")->capture_default_str();
  cmd->callback([&ctx, opts] {
    Status status = run_jobs(ctx, *opts);
    if (!status.ok()) ctx.fail(status.error());
  });
}

}  // namespace sweep
