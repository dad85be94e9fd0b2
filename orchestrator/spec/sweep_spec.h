// The sweep file (docs/sweep-file.md): parsing and strict validation of the YAML into
// a typed SweepSpec, expansion of its grid into jobs, and the stable identity (hash) of a job.
// LibTorch-free. Every function here is pure apart from load_sweep_spec reading one file; all are
// safe to call from several threads on distinct arguments.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "protocol/objective.h"

namespace sweep {

// `resources.executor: slurm` (docs/slurm.md): each worker is one Slurm batch job.
struct SlurmSpec {
  std::string partition, account, qos, mem;  // empty: the cluster's default
  int gpus_per_job = 0;                      // --gres=gpu:N; 0: a CPU job
  int cpus_per_job = 0;                      // --cpus-per-task; 0: threads_per_job
  std::string time_limit;                    // --time as Slurm writes it ("04:00:00"); empty: none
  std::vector<std::string> sbatch_args;      // extra sbatch arguments, each one argv item
  int max_submitted = 1;                     // Slurm jobs queued + running at once
};

enum class ExecutorKind { kLocal, kSlurm };
// "local", "slurm".
std::string to_string(ExecutorKind kind);
std::optional<ExecutorKind> parse_executor_kind(const std::string& text);

// Where the jobs run: CPU slots (`slots`, `threads_per_job`) or GPUs (`gpus`, `jobs_per_gpu`).
struct ResourceSpec {
  ExecutorKind executor = ExecutorKind::kLocal;
  SlurmSpec slurm;        // used under ExecutorKind::kSlurm
  std::vector<int> gpus;  // device indices; empty = CPU slots
  int jobs_per_gpu = 1;
  int slots = 1;  // concurrent CPU jobs (ignored when gpus is set)
  int threads_per_job = 1;
  // Up to this many compatible jobs share one worker process and one slot (protocol/pack.h);
  // 1: every job runs alone.
  int pack = 1;
  // GiB one CPU slot may use; 0: this machine's memory shared by the slots (`sweep plan`).
  double memory_gb = 0;

  bool uses_gpus() const { return !gpus.empty(); }
  // gpus.size() * jobs_per_gpu with GPUs, else slots; slurm.max_submitted under Slurm.
  int total_slots() const;
};

// Dataset locations as resolved: "builtin:..." kept as written, paths made relative to the
// spec file's directory absolute (lexically normalised; existence is not checked here).
struct DataSpec {
  std::string train, val, image_folder;
  // data.max_image_pixels: the data check's pixel limit; 0 when the file leaves it out (the
  // check's default, data/image.h). Not part of a job's identity: it decides what is checked,
  // not what is trained.
  int max_image_pixels = 0;
};

// How the `grid:` block becomes jobs (`search:`, docs/sweep-file.md). kGrid: the cartesian
// product of the values. kRandom / kSobol: n_trials points drawn from the axes' distributions,
// trial i a pure function of (seed, i, the axes), so a longer run only adds trials.
struct SearchSpec {
  enum class Type { kGrid, kRandom, kSobol };
  Type type = Type::kGrid;
  int n_trials = 0;    // >= 1 under kRandom / kSobol; 0 under kGrid
  long long seed = 0;  // >= 0
  bool sampled() const { return type != Type::kGrid; }
};
// "grid", "random", "sobol".
std::string to_string(SearchSpec::Type type);

// How a sampled search draws an axis's value. kChoice: one of `values` (the only form under
// search type grid, where every value is taken). kUniform / kLogUniform: a number in
// [low, high], uniform in the value or in its logarithm.
enum class Draw { kChoice, kUniform, kLogUniform };

// One grid axis (under random/sobol: one dimension of the search space). Plain axis: `values`
// are the key's values. Linked axis (`lora_alpha: {times: lora_r, values: [1, 2]}`):
// value = multiplier * value of `times`, so `values` holds the multipliers (always kChoice).
// A kUniform / kLogUniform axis has no values, only its closed range [low, high].
struct GridAxis {
  std::string key;
  std::vector<nlohmann::json> values;  // normalised (int keys hold ints)
  std::string times;                   // empty for a plain axis
  Draw draw = Draw::kChoice;
  double low = 0, high = 0;  // kUniform / kLogUniform only; low <= high (> 0 for kLogUniform)
  bool linked() const { return !times.empty(); }
  bool continuous() const { return draw != Draw::kChoice; }
};

// Early stopping (docs/sweep-file.md, `early_stopping`): jobs judged at rungs placed by training
// tokens seen, so that jobs with different batch sizes compare at equal training.
struct EarlyStoppingSpec {
  enum class Rule { kNone, kAsha, kMedian };
  Rule rule = Rule::kNone;
  Objective objective;          // the metric judged at the rungs (default: the sweep's objective)
  int64_t grace_tokens = 0;     // the first rung; no job is stopped before it
  double reduction_factor = 3;  // asha: rung k at grace * factor^k; keeps the best 1/factor
  int64_t interval_tokens = 0;  // median: rung k at grace + k * interval
  int min_peers = 3;            // median: other jobs needed at a rung before anyone is stopped

  bool enabled() const { return rule != Rule::kNone; }
};

// "asha", "median" ("none" for kNone).
const char* to_string(EarlyStoppingSpec::Rule rule);

// The rungs below `limit_tokens` (a bound on the job's training tokens), ascending, at most
// kMaxRungs of them: what the worker must evaluate at (JobFile::eval_at_tokens).
constexpr int kMaxRungs = 64;
std::vector<int64_t> rung_tokens(const EarlyStoppingSpec& spec, int64_t limit_tokens);

// Caps on what a sweep spends (docs/sweep-file.md, `budget`); 0 = no cap. Jobs that never
// started are not started once a cap is reached; jobs already started run to their end.
struct BudgetSpec {
  int max_jobs = 0;        // jobs ever started
  int64_t max_tokens = 0;  // training tokens of all jobs together
  int64_t max_steps = 0;   // training steps of all jobs together
  bool any() const { return max_jobs > 0 || max_tokens > 0 || max_steps > 0; }
};

struct SweepSpec {
  std::string name;         // [A-Za-z0-9_.-]+
  std::string source_path;  // the file it was read from ("" or a label for parse_sweep_spec)
  std::string base_model;   // "builtin:tiny-llava" or an absolute path
  DataSpec data;
  nlohmann::json train = nlohmann::json::object();  // fixed train keys, validated, normalised
  SearchSpec search;                                // `search:`; grid when absent
  std::vector<GridAxis> grid;                       // in file order
  std::vector<nlohmann::json> include;  // extra points: objects of train keys (validated)
  std::vector<nlohmann::json> exclude;  // partial points: a job matching every key is dropped
  // The metric the leaderboard ranks by (val_loss | val_token_acc | val_exact_match) and its
  // mode, which defaults to default_objective_mode(metric).
  Objective objective;
  ResourceSpec resources;
  EarlyStoppingSpec early_stopping;
  BudgetSpec budget;
  int retries = 0;
  double max_job_time_s = 0;  // 0 = no limit; YAML accepts seconds or "30s"/"30m"/"2h"
  std::vector<std::string> worker_command;  // empty = the sweep-worker beside sweep
};

struct ExpandedJob {
  std::string hash;  // job_hash(spec, params)
  // Grid search: 0-based position in expansion order (grid order, then include). Random/sobol:
  // the trial number (excluded trials leave gaps), include points numbered from n_trials on.
  int index = 0;
  nlohmann::json params;     // every TrainParams key resolved, defaults filled, normalised
  double lora_scale = 0;     // alpha/r, or alpha/sqrt(r) with use_rslora
  std::string duplicate_of;  // hash of an earlier job with the same effective configuration
  bool is_duplicate() const { return !duplicate_of.empty(); }
};

// Reads and validates a sweep file. Errors are kUser (kNotFound / kIo for the file itself) with
// the message "FILE:LINE:COL: what is wrong" and a hint (closest key, allowed values).
Result<SweepSpec> load_sweep_spec(const std::string& path);
// Same, from text; `source_name` is used in messages and relative paths resolve against its
// directory (or the current directory when it has none).
Result<SweepSpec> parse_sweep_spec(const std::string& yaml_text, const std::string& source_name);

// The jobs of a sweep file, by its search type. Grid: the cartesian product of the grid (first
// axis varies slowest; linked axes follow their base axis). Random / sobol: trials 0 ..
// n_trials-1 drawn by make_sampler(spec) (sampler.h). Then, either way, points matched by an
// `exclude:` entry are dropped and the `include:` points (never excluded) appended. A point whose
// resolved params equal an earlier point's (same hash: e.g. an include point that is also a grid
// point, 1e-4 and 0.0001 in one list, or two trials of a choice-only space) stays in the list,
// flagged: its duplicate_of is the earlier job's hash (which is also its own). Such entries are
// reports only: record and run each hash once (skip jobs with a non-empty duplicate_of). Errors
// (kUser, naming the spec file): a linked value that is not allowed for its key (e.g. a
// fractional batch_size), more than 10,000 grid points, or no job left after exclusion.
Result<std::vector<ExpandedJob>> expand_grid(const SweepSpec& spec);

// The size of each grid axis, in file order (what `sweep plan` prints as "3×2×2×1"). A
// uniform/loguniform axis (random/sobol only) has no values and counts 0.
std::vector<size_t> grid_shape(const SweepSpec& spec);

// One line on what expand_grid made: "12 jobs (0 duplicates) from a 3×2×2×1 grid", or for
// random/sobol "12 jobs (0 duplicates) from 12 trials (sobol, seed 1) over 3 keys", plus
// ", 2 included, 3 excluded" when include/exclude changed the count.
std::string expansion_summary(const SweepSpec& spec, const std::vector<ExpandedJob>& jobs);

// Canonical text of a JSON value: object keys sorted, no whitespace, integers as integers,
// reals as "%.17g" of the parsed double (so 1e-4 and 0.0001 print the same), integral reals
// kept as reals unless normalised by the caller (normalise_params does that for int keys).
std::string canonical_json(const nlohmann::json& value);

// Train params with integral reals for int keys turned into ints (8.0 -> 8) and every other
// number of a number key turned into a double (1 -> 1.0), so equal settings compare equal.
nlohmann::json normalise_params(const nlohmann::json& params);

// 16 lowercase hex chars: FNV-1a 64 of canonical_json({params, base_model, data}). It covers
// what decides a job's result: every resolved training key, the base model and the three data
// locations. Not covered (they do not change the result): name, objective, resources, retries,
// max_job_time, worker command.
std::string job_hash(const SweepSpec& spec, const nlohmann::json& params);

// The whole spec as JSON (the search block, the grid axes, include/exclude and resolved paths
// included), stored in the sweeps table and shown by `sweep plan --format json`.
nlohmann::json spec_to_json(const SweepSpec& spec);

}  // namespace sweep
