// `sweep run SPEC.yaml`: expand the sweep file, record the sweep and its jobs, prepare the inputs,
// then run every pending job on the configured slots until none is left (docs/running.md).
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "data/builtin.h"
#include "db/store.h"
#include "orchestrator/cli/commands.h"
#include "orchestrator/cli/exit_codes.h"
#include "orchestrator/report/run_summary.h"
#include "orchestrator/run/live_display.h"
#include "orchestrator/run/local_executor.h"
#include "orchestrator/run/prepare.h"
#include "orchestrator/run/run_lock.h"
#include "orchestrator/run/run_loop.h"
#include "orchestrator/run/slurm_executor.h"
#include "orchestrator/spec/sweep_spec.h"

namespace fs = std::filesystem;

namespace sweep {

namespace {

struct RunFlags {
  std::string spec_path;
  int slots = 0;
  std::string gpus;
  std::string executor;  // "", "local" or "slurm"
  bool dry_run = false;
};

Status apply_resource_flags(const RunFlags& f, SweepSpec& spec) {
  if (!f.executor.empty()) {
    auto kind = parse_executor_kind(f.executor);
    if (!kind) {
      return make_error(ErrorKind::kUser, "--executor " + f.executor + ": unknown executor",
                        "use --executor local or --executor slurm");
    }
    // A file written for this machine keeps its parallelism on a cluster.
    if (*kind == ExecutorKind::kSlurm && spec.resources.executor == ExecutorKind::kLocal)
      spec.resources.slurm.max_submitted = spec.resources.total_slots();
    spec.resources.executor = *kind;
  }
  bool slurm = spec.resources.executor == ExecutorKind::kSlurm;
  if (slurm && (f.slots > 0 || !f.gpus.empty())) {
    return make_error(ErrorKind::kUser, "--slots and --gpus are for the local executor",
                      "under Slurm set resources.max_submitted and gpus_per_job (docs/slurm.md)");
  }
  if (f.slots > 0) {
    spec.resources.gpus.clear();
    spec.resources.slots = f.slots;
  }
  if (!f.gpus.empty()) {
    spec.resources.gpus.clear();
    std::stringstream in(f.gpus);
    std::string item;
    while (std::getline(in, item, ',')) {
      try {
        spec.resources.gpus.push_back(std::stoi(item));
      } catch (const std::exception&) {
        return make_error(ErrorKind::kUser, "--gpus: '" + item + "' is not a GPU index",
                          "give a comma-separated list such as --gpus 0,1");
      }
    }
  }
  return ok_status();
}

Result<int64_t> record_sweep(Store& store, const SweepSpec& spec,
                             const std::vector<ExpandedJob>& jobs) {
  auto sweep_id = store.upsert_sweep(spec.name, fs::absolute(spec.source_path).string(),
                                     spec_to_json(spec).dump(), spec.objective.metric,
                                     to_string(spec.objective.mode));
  if (!sweep_id.ok()) return sweep_id.error();
  std::vector<NewJob> rows;
  rows.reserve(jobs.size());
  for (const ExpandedJob& j : jobs) {
    rows.push_back(NewJob{j.hash, j.index, canonical_json(j.params), j.lora_scale});
  }
  auto stats = store.upsert_jobs(*sweep_id, rows);
  if (!stats.ok()) return stats.error();
  spdlog::info("sweep {}: {} jobs ({} new, {} recorded before)", spec.name, jobs.size(),
               stats->added, stats->existing);
  return *sweep_id;
}

RunConfig make_config(const SweepSpec& spec, int64_t sweep_id, const std::string& sweep_dir,
                      std::vector<std::string> argv, const PreparedInputs& in) {
  RunConfig c;
  c.sweep_id = sweep_id;
  c.sweep_name = spec.name;
  c.sweep_dir = sweep_dir;
  c.worker_argv = std::move(argv);
  c.resources = spec.resources;
  c.retries = spec.retries;
  c.max_job_time_s = spec.max_job_time_s;
  c.base_model = in.base_model;
  c.train_data = in.train_data;
  c.val_data = in.val_data;
  c.image_folder = in.image_folder;
  c.max_image_pixels = spec.data.max_image_pixels;
  c.objective = spec.objective;
  c.early_stopping = spec.early_stopping;
  c.budget = spec.budget;
  return c;
}

// Jobs that ended without a result: failed (not-learning included), diverged, infeasible.
int unsuccessful_jobs(const RunSummary& s) {
  int n = 0;
  for (JobState state : {JobState::kFailed, JobState::kDiverged, JobState::kInfeasible}) {
    auto it = s.counts.find(state);
    if (it != s.counts.end()) n += it->second;
  }
  return n;
}

void print_summary(const RunSummary& s) {
  std::cerr << (s.interrupted ? "stopped: " : "done: ") << format_counts(s.counts) << "\n";
  if (s.interrupted) std::cerr << "run `sweep run` with the same file again to continue\n";
}

// --dry-run: the base model and the data files exist (builtin: ones are made by a real run).
Status check_inputs_exist(const SweepSpec& spec) {
  auto missing = [&](const std::string& key, const std::string& path, bool dir) -> Status {
    std::error_code ec;
    const bool ok = dir ? fs::is_directory(path, ec) : fs::is_regular_file(path, ec);
    if (ok) return ok_status();
    return make_error(ErrorKind::kUser,
                      key + ": " + path +
                          (fs::exists(path, ec) ? (dir ? " is not a directory" : " is not a file")
                                                : " does not exist"),
                      "fix " + key + " in " + spec.source_path);
  };
  if (!data::is_builtin(spec.base_model)) {
    SWEEP_RETURN_IF_ERROR(missing("base_model", spec.base_model, true));
    SWEEP_RETURN_IF_ERROR(check_model_dir(spec.base_model));
  }
  const std::pair<const char*, const std::string*> files[] = {{"data.train", &spec.data.train},
                                                              {"data.val", &spec.data.val}};
  for (const auto& [key, path] : files) {
    if (!path->empty() && !data::is_builtin(*path))
      SWEEP_RETURN_IF_ERROR(missing(key, *path, false));
  }
  if (!spec.data.image_folder.empty() && !data::is_builtin(spec.data.image_folder))
    SWEEP_RETURN_IF_ERROR(missing("data.image_folder", spec.data.image_folder, true));
  return ok_status();
}

void run_command(const RunFlags& flags, CliContext& ctx) {
  // Log lines go to stderr: stdout stays free for what a command prints as its result.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("sweep-run"));
  auto spec = load_sweep_spec(flags.spec_path);
  if (!spec.ok()) return ctx.fail(spec.error());
  if (auto st = apply_resource_flags(flags, *spec); !st.ok()) return ctx.fail(st.error());
  auto jobs = expand_grid(*spec);
  if (!jobs.ok()) return ctx.fail(jobs.error());
  auto argv = resolve_worker_argv(*spec, self_exe_dir());
  if (!argv.ok()) return ctx.fail(argv.error());
  if (flags.dry_run) {
    if (auto st = check_inputs_exist(*spec); !st.ok()) return ctx.fail(st.error());
    std::cout << spec->name << ": " << jobs->size() << " jobs on " << spec->resources.total_slots()
              << (spec->resources.executor == ExecutorKind::kSlurm ? " Slurm job slot(s)"
                                                                   : " slot(s)")
              << " with " << (*argv)[0] << "; nothing run (--dry-run)\n";
    return;
  }
  std::string sweep_dir = ctx.runs_dir() + "/" + spec->name;
  // The database's lock first: one orchestrator per sweep per database, whatever its runs dir.
  std::string abs_dir = fs::absolute(sweep_dir).lexically_normal().string();
  auto db_lock = RunLock::acquire(sweep_db_lock_path(ctx.db_path(), spec->name),
                                  "sweep " + spec->name + " of database " + ctx.db_path(), abs_dir);
  if (!db_lock.ok()) return ctx.fail(db_lock.error());
  auto lock = RunLock::acquire(sweep_lock_path(sweep_dir), "this sweep", abs_dir);
  if (!lock.ok()) return ctx.fail(lock.error());
  auto inputs = prepare_inputs(*spec, self_exe_dir());
  if (!inputs.ok()) return ctx.fail(inputs.error());
  auto store = Store::open(ctx.db_path());
  if (!store.ok()) return ctx.fail(store.error());
  auto sweep_id = record_sweep(**store, *spec, *jobs);
  if (!sweep_id.ok()) return ctx.fail(sweep_id.error());

  std::unique_ptr<Executor> executor;
  if (spec->resources.executor == ExecutorKind::kSlurm) {
    executor =
        std::make_unique<SlurmExecutor>(spec->resources.slurm, spec->resources.threads_per_job);
  } else {
    executor = std::make_unique<LocalExecutor>();
  }
  LiveDisplay display(::isatty(STDERR_FILENO) == 1, static_cast<int>(jobs->size()));
  display.show_evals(**store, spec->objective.metric);
  RunLoop loop(**store, *executor,
               make_config(*spec, *sweep_id, fs::absolute(sweep_dir).lexically_normal().string(),
                           *argv, *inputs),
               &display);
  loop.install_signal_handlers();
  auto summary = loop.run();
  if (!summary.ok()) return ctx.fail(summary.error());
  print_summary(*summary);
  if (!summary->interrupted)
    report::print_run_report(**store, spec->name, ctx.runs_dir(), std::cerr);
  if (summary->interrupted) {
    ctx.exit_code = kSweepExitInterrupted;
  } else if (const int unsuccessful = unsuccessful_jobs(*summary); unsuccessful > 0) {
    std::cerr << "error: " << unsuccessful
              << " job(s) ended failed, diverged or infeasible (exit code " << kSweepExitJobsFailed
              << ")\n"
              << "hint: `sweep jobs " << spec->name << " --state failed` shows each one's error; "
              << "`sweep retry " << spec->name << "` runs them again\n";
    ctx.exit_code = kSweepExitJobsFailed;
  }
}

}  // namespace

void add_run_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Record a sweep's jobs and run them (resumable: run it again to continue)");
  cmd->add_option("spec", flags->spec_path, "sweep file (YAML)")->required();
  auto* slots =
      cmd->add_option("--slots", flags->slots, "concurrent CPU jobs (overrides resources)");
  cmd->add_option("--gpus", flags->gpus, "GPU indices, e.g. 0,1 (overrides resources)")
      ->excludes(slots);
  cmd->add_option("--executor", flags->executor,
                  "where workers run: local or slurm (overrides resources.executor)");
  cmd->add_flag("--dry-run", flags->dry_run,
                "check the file, the worker, the base model and the data paths; run nothing");
  cmd->callback([flags, &ctx] { run_command(*flags, ctx); });
}

}  // namespace sweep
