// The results store: the orchestrator's only door to the SQLite database (docs/architecture.md,
// docs/database.md). Every method returns a Result/Status; a SQLite failure is a kDatabase error
// whose message says what was being done and carries sqlite3_errmsg.
//
// Threading: a Store is not thread-safe; use one per thread or process. Several processes may
// open the same file (WAL mode, busy_timeout, BEGIN IMMEDIATE with retry), but the orchestrator
// is the only writer in normal operation; readers (`sweep query`, `sweep leaderboard`) use
// open_readonly().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/result.h"
#include "protocol/objective.h"

namespace sweep {

class Db;

// kPruned: stopped by early stopping at a rung (final; its checkpoints and evals are kept).
enum class JobState {
  kPending,
  kRunning,
  kSucceeded,
  kFailed,
  kDiverged,
  kCancelled,
  kLost,
  kPruned,
  kInfeasible
};

// "pending", "running", "succeeded", "failed", "diverged", "cancelled", "lost", "pruned",
// "infeasible".
const char* to_string(JobState state);
std::optional<JobState> parse_job_state(const std::string& text);
// succeeded, failed, diverged, cancelled, pruned, infeasible. (Whether a failed job has attempts
// left is the caller's decision; `lost` is not final: it is re-queued while attempts remain.)
bool is_final(JobState state);
// All states in lifecycle order (for tables and help texts).
const std::vector<JobState>& all_job_states();

struct SweepRecord {
  int64_t id = 0;
  std::string name, spec_path, spec_json, objective_metric, objective_mode;  // mode: "min"|"max"
  double created_at = 0;

  // The objective as a type (upsert_sweep accepts only "min" and "max").
  Objective objective() const {
    return Objective{objective_metric,
                     parse_objective_mode(objective_mode).value_or(Objective::Mode::kMin)};
  }
};

struct NewJob {
  std::string hash;  // stable identity; unique per sweep
  int grid_index = 0;
  std::string params_json;  // resolved hyperparameters + fixed settings (canonical JSON object)
  double lora_scale = 0;    // lora_alpha / lora_r, kept for sorting and plotting
};

struct JobRecord {
  int64_t id = 0;
  int64_t sweep_id = 0;
  std::string hash;
  int grid_index = 0;
  std::string params_json;
  double lora_scale = 0;
  JobState state = JobState::kPending;
  int attempt = 0;  // attempts started so far
  int64_t pid = 0;
  std::string host, device, run_dir;
  double created_at = 0, started_at = 0, finished_at = 0;  // 0 = not yet
  std::optional<int> exit_code;
  std::string error;
  uint64_t events_offset = 0;    // ingestion cursor for events.jsonl: byte offset ...
  int64_t last_seq = 0;          // ... and the last ingested event's seq
  std::string info_json = "{}";  // set_job_info keys, e.g. {"started": {...}, "finished": {...}}
};

struct AttemptRecord {
  int64_t job_id = 0;
  int attempt = 0;
  int64_t pid = 0;
  std::string host, device, run_dir;
  double started_at = 0, finished_at = 0;
  std::string state;  // the job state this attempt ended in; "running" while open
  std::optional<int> exit_code;
  std::string error;
  std::optional<int64_t> pack_id;  // shared by the attempts one worker process ran together
};

// One job of a pack starting (Store::start_pack_attempts).
struct PackMemberStart {
  int64_t job_id = 0;
  std::string run_dir;
};

struct UpsertStats {
  int added = 0;
  int existing = 0;
};

// How much training a row was measured after (metrics and eval_metrics rows); unset for workers
// that do not count it.
struct TrainingSeen {
  std::optional<int64_t> samples;
  std::optional<int64_t> tokens;
};

// Early stopping's verdict on one job at one rung (docs/database.md, `decisions`): recorded once,
// never changed, so that a restarted orchestrator keeps every earlier decision.
struct RungDecision {
  int64_t job_id = 0;
  int rung = 0;             // 0-based
  int64_t rung_tokens = 0;  // training tokens that define the rung
  int64_t step = 0;         // the job's step at the evaluation used
  int64_t tokens_seen = 0;  // the job's training tokens at that evaluation
  std::string metric;       // e.g. val_loss
  double value = 0;         // the metric at that evaluation
  double compared_to = 0;   // the cutoff (ASHA) or the peers' median (median rule); NaN: none
  int rank = 0;             // 1 = best among the values recorded at this rung, itself included
  int peers = 0;            // values recorded at this rung, itself included
  std::string action;       // "continue" | "stop"
  std::string rule;         // "asha" | "median"
  double decided_at = 0;
  std::string job_hash;  // read back by decisions(); add_decision ignores it
};

struct EvalRow {
  int64_t job_id = 0;
  int64_t step = 0;
  std::map<std::string, double> metrics;
};

struct CheckpointRow {
  int64_t job_id = 0;
  int64_t step = 0;
  std::string path;
  std::string metrics_json;
  bool kept = true;
};

// A generated answer kept by an evaluation beside its reference (docs/database.md, `predictions`).
struct PredictionRow {
  int64_t job_id = 0;
  int64_t step = 0;
  int64_t sample = 0;  // position in the evaluated subset
  std::string sample_id, prompt, reference, prediction;
};

// One point of a curve: a `metrics` (training) or `eval_metrics` row.
struct CurvePoint {
  int64_t job_id = 0;
  std::string name;
  int64_t step = 0;
  double value = 0;
  std::optional<int64_t> tokens_seen;
};

// The result of a free SQL query: cells as text (nullopt = SQL NULL); numeric_column[i] is true
// when every non-null value of column i is an INTEGER or REAL.
struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::vector<bool> numeric_column;
};

struct LeaderRow {
  int64_t job_id = 0;
  std::string hash;
  std::string params_json;
  std::string state;
  std::optional<double> objective;  // best value of the metric over the job's evals
  int64_t best_step = 0;
  std::string checkpoint_path;  // kept checkpoint at best_step; empty if none saved or kept = 0
  std::map<std::string, double> metrics;  // every eval metric at best_step
  // Early stopping: the highest rung the job was judged at (0-based); nullopt without decisions.
  std::optional<int> rung;
  // The base model's own score: the job's step-0 evaluation of the metric (nullopt without one),
  // and objective minus it in the metric's direction (positive: the job beat the base).
  std::optional<double> base_objective;
  std::optional<double> gain;
  bool not_learning = false;  // the job's learning check failed (learning_checks.passed = 0)
};

// The worker's check that a job's adapter moves (the learning_checks table).
struct LearningCheckRow {
  int64_t job_id = 0;
  int64_t step = 0;
  bool passed = true;
  std::optional<double> lora_b_norm, lora_grad_norm, loss_first, loss_last;
  std::string reason;  // why it failed; empty when it passed
};

// A checkpoint still kept (kept = 1), with the job's evaluation of a metric at its step.
struct RankedCheckpoint {
  int64_t job_id = 0;
  std::string hash;
  int64_t step = 0;
  std::string path;
  double value = 0;
};

class Store {
 public:
  // Creates the parent directory and the file when missing, sets the pragmas and applies the
  // pending migrations. ":memory:" gives a private in-memory database. A database written by a
  // newer version of sweep is refused (kUser, with the versions in the message).
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  // Read-only connection (SQLITE_OPEN_READONLY + PRAGMA query_only); never creates or migrates.
  // kNotFound when the file is missing (hint: run `sweep run SPEC.yaml` first).
  static Result<std::unique_ptr<Store>> open_readonly(const std::string& path);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schema_version() const;
  const std::string& path() const { return path_; }

  // BEGIN IMMEDIATE (retried while another writer holds the lock) ... COMMIT; ROLLBACK when the
  // body returns an error, which is then returned. Nested calls join the outer transaction.
  Status transaction(const std::function<Status()>& body);

  // Sweeps are keyed by name: a second call with the same name updates spec_path, spec_json and
  // the objective, and returns the same id.
  Result<int64_t> upsert_sweep(const std::string& name, const std::string& spec_path,
                               const std::string& spec_json, const std::string& objective_metric,
                               const std::string& objective_mode);
  // One transaction. A job whose hash already exists in the sweep is left untouched (counted in
  // `existing`); new hashes are inserted as pending (counted in `added`).
  Result<UpsertStats> upsert_jobs(int64_t sweep_id, const std::vector<NewJob>& jobs);

  Result<std::optional<SweepRecord>> find_sweep(const std::string& name);
  Result<std::vector<SweepRecord>> list_sweeps();  // by id
  // The sweep a command means, the one rule for every command that takes a sweep name: `name`
  // when given (kNotFound listing the known ones when missing); with an empty name, the only
  // sweep (kNotFound when there is none, kUser listing them when there are several).
  Result<SweepRecord> resolve_sweep(const std::string& name);
  // Jobs of a sweep ordered by grid_index, id; optionally only one state, and only the first
  // `limit` of them (0: all).
  Result<std::vector<JobRecord>> list_jobs(int64_t sweep_id,
                                           std::optional<JobState> state = std::nullopt,
                                           int64_t limit = 0);
  Result<JobRecord> get_job(int64_t job_id);  // kNotFound naming the id
  Result<std::optional<JobRecord>> find_job(int64_t sweep_id, const std::string& hash);
  // Every state present in the map, zero when no job has it.
  Result<std::map<JobState, int>> count_by_state(int64_t sweep_id);
  Result<std::vector<AttemptRecord>> attempts(int64_t job_id);  // by attempt number

  // Attempt lifecycle. start_attempt: state running, attempt+1, pid/host/device/run_dir,
  // started_at = now, finished_at/exit_code/error cleared, and a new attempts row.
  Status start_attempt(int64_t job_id, int64_t pid, const std::string& host,
                       const std::string& device, const std::string& run_dir);
  // Packs (docs/database.md, attempts.pack_id): start_attempt for every member under the one pid
  // of their worker process, and a new pack id, unique in the database, on each new attempts
  // row; one transaction. Returns the pack id.
  Result<int64_t> start_pack_attempts(const std::vector<PackMemberStart>& members, int64_t pid,
                                      const std::string& host, const std::string& device);
  // job id -> pack id of its latest attempt, for the sweep's jobs (optionally only those in
  // `state`) whose latest attempt was packed.
  Result<std::map<int64_t, int64_t>> latest_pack_ids(int64_t sweep_id,
                                                     std::optional<JobState> state = std::nullopt);
  // Cluster executors (attempts.executor_id, e.g. a Slurm job id): recorded on the job's latest
  // attempt right after it starts; read back by job (latest attempt) or by attempt number.
  // Databases before schema version 5 have none (empty results).
  Status set_executor_id(int64_t job_id, const std::string& executor_id);
  Result<std::map<int64_t, std::string>> latest_executor_ids(
      int64_t sweep_id, std::optional<JobState> state = std::nullopt);
  Result<std::map<int, std::string>> attempt_executor_ids(int64_t job_id);
  // Sets the job's state, exit code, error and finished_at, and closes its latest attempts row.
  Status finish_attempt(int64_t job_id, JobState state, std::optional<int> exit_code,
                        const std::string& error);
  // Plain state change (re-queue as pending, cancel, mark lost). `error` replaces the job's error
  // when non-empty.
  Status set_state(int64_t job_id, JobState state, const std::string& error = "");
  // Attempts granted by `sweep retry` on top of the sweep file's retries + 1 (0 until then);
  // orchestrator/run/retry_policy.h decides with it.
  Result<int> extra_attempts(int64_t job_id);
  Status set_extra_attempts(int64_t job_id, int extra_attempts);

  // Ingestion. Call inside transaction() together with set_cursor so that the cursor and the
  // rows move together. All are idempotent: re-ingesting the same events changes nothing.
  // INSERT OR REPLACE on (job_id, name, step).
  Status add_metrics(int64_t job_id, int attempt, int64_t step,
                     const std::map<std::string, double>& values, const TrainingSeen& seen = {});
  // INSERT OR REPLACE on (job_id, step, name): one eval_metrics row per metric.
  Status add_eval(int64_t job_id, int attempt, int64_t step,
                  const std::map<std::string, double>& metrics, const TrainingSeen& seen = {});
  // INSERT OR REPLACE on (job_id, path); kept = 1.
  Status add_checkpoint(int64_t job_id, int64_t step, const std::string& path,
                        const std::string& metrics_json);
  // kept = 0 and deleted_at (first time only): the worker's retention policy removed `path` (a
  // checkpoint event's `deleted`). kNotFound when the path was never recorded.
  Status mark_checkpoint_deleted(int64_t job_id, const std::string& path);
  Result<std::vector<CheckpointRow>> checkpoints(int64_t job_id);  // by step
  // INSERT OR REPLACE on (job_id, step, sample): the predictions an eval event carried.
  Status add_predictions(int64_t job_id, int64_t step, const std::vector<PredictionRow>& rows);
  // A job's kept predictions at `step`, or at every step when nullopt; by step, then sample.
  Result<std::vector<PredictionRow>> predictions(int64_t job_id,
                                                 std::optional<int64_t> step = std::nullopt);
  // Every row of `metrics` (eval = false, only `name`) or of `eval_metrics` (eval = true, every
  // metric when `name` is empty) of a sweep's jobs, streamed to `fn` ordered by job, name, step
  // (what a report draws; no copy of a million rows is held).
  Status for_each_curve_point(int64_t sweep_id, bool eval, const std::string& name,
                              const std::function<void(const CurvePoint&)>& fn);
  Status set_cursor(int64_t job_id, uint64_t events_offset, int64_t last_seq);
  // Sets info_json[key] = json_value (a JSON text), e.g. the started event's versions or the
  // finished event's summary. kUser when json_value is not valid JSON.
  Status set_job_info(int64_t job_id, const std::string& key, const std::string& json_value);
  // INSERT OR REPLACE on job_id: the job's learning check (a learning_check event); a later
  // check of the same job replaces it. kDatabase before schema version 5.
  Status add_learning_check(const LearningCheckRow& check);

  // Early stopping. add_decision keeps the first decision of a (job, rung): a second one is
  // ignored (returns false). decisions: every decision of the sweep in the order they were made,
  // or only the `latest` N of them (still oldest first); decision_counts: how many per action.
  Result<bool> add_decision(const RungDecision& decision);
  Result<std::vector<RungDecision>> decisions(int64_t sweep_id, int64_t latest = 0);
  Result<std::map<std::string, int64_t>> decision_counts(int64_t sweep_id);
  // The evaluations of a job that carry tokens seen: (step, tokens_seen, value of `metric`), by
  // step (what early stopping decides from after a restart).
  Result<std::vector<std::tuple<int64_t, int64_t, double>>> evals_with_tokens(
      int64_t job_id, const std::string& metric);
  // Training done by the sweep's jobs so far: the sum over jobs of their latest step and tokens
  // seen (from progress metrics; budget caps and `sweep status`).
  struct ComputeUsed {
    int64_t steps = 0;
    int64_t tokens = 0;
  };
  Result<ComputeUsed> compute_used(int64_t sweep_id);
  // The same per job, for every job of the sweep in `state`: job id -> its largest step and
  // tokens seen (0 without metrics) and the max_steps of its params (0 without one): what early
  // stopping saved on pruned jobs, in `sweep status`.
  struct JobProgress {
    int64_t steps = 0;
    int64_t tokens = 0;
    int64_t max_steps = 0;
  };
  Result<std::map<int64_t, JobProgress>> job_progress(int64_t sweep_id, JobState state);

  // Results. Best eval after step 0 (step 0 is the base model, never a job's best) per job by
  // `metric` (min, or max when `maximize`), best first, ties by job id; only jobs that have such
  // an eval and are succeeded, pruned (stopped early, with the rung they reached) or running
  // (failed, diverged, cancelled, lost and pending are left out). Each row carries the job's
  // step-0 score, its gain over it and its learning check's verdict.
  // `limit` > 0: only the best `limit` rows (from schema version 6 read without looking at the
  // other jobs: eval_best keeps every job's best value, indexed by it).
  Result<std::vector<LeaderRow>> leaderboard(int64_t sweep_id, const std::string& metric,
                                             bool maximize, int limit = 0);
  // How many jobs leaderboard() ranks and how many of them beat the base model (gain > 0),
  // without reading their rows.
  struct RankSummary {
    int ranked = 0;
    int beat_base = 0;
  };
  Result<RankSummary> leaderboard_summary(int64_t sweep_id, const std::string& metric,
                                          bool maximize);
  // Kept checkpoints of the sweep's succeeded jobs that have an eval of `metric` at their step,
  // best value first (ties: job id, then the earlier step): what `sweep best` falls back on when
  // the best job's checkpoint is gone.
  Result<std::vector<RankedCheckpoint>> kept_checkpoints(int64_t sweep_id,
                                                         const std::string& metric, bool maximize);
  // Best value of `metric` over each job's evals after step 0, for every job of the sweep that
  // has one, whatever its state (for `sweep jobs`).
  Result<std::map<int64_t, double>> best_objectives(int64_t sweep_id, const std::string& metric,
                                                    bool maximize);
  // The learning checks of the sweep's jobs, by job id (empty before schema version 5); only the
  // failed ones with `failed_only`.
  Result<std::map<int64_t, LearningCheckRow>> learning_checks(int64_t sweep_id,
                                                              bool failed_only = false);
  Result<std::vector<EvalRow>> evals(int64_t job_id);  // by step
  // The latest value of every progress metric of a job, with "step" (for `sweep status`).
  Result<std::map<std::string, double>> latest_metrics(int64_t job_id);
  // (step, value) of one progress metric, by step.
  Result<std::vector<std::pair<int64_t, double>>> metric_curve(int64_t job_id,
                                                               const std::string& name);
  // Runs one read-only statement and returns all its rows. Refused (kUser, "sweep query is
  // read-only: ...") when the text holds more than one statement or when the statement could
  // write (sqlite3_stmt_readonly), whatever the connection; a Store from open_readonly() is
  // additionally unable to write at the SQLite level.
  Result<QueryResult> query_readonly(const std::string& sql);
  // query_readonly stopped after `timeout_seconds` of running (sqlite3_progress_handler): kUser
  // naming the limit and `--timeout`. No limit when timeout_seconds <= 0.
  Result<QueryResult> query_readonly(const std::string& sql, double timeout_seconds);
  // The names of the eval metrics recorded for the sweep's jobs, sorted.
  Result<std::vector<std::string>> eval_metric_names(int64_t sweep_id);
  // OK when `metric` is empty (the objective) or the sweep has an eval of it, or has no evals yet;
  // otherwise kUser naming the metric and listing those the sweep has (`--metric` of
  // `sweep leaderboard` and `sweep best`).
  Status check_eval_metric(const SweepRecord& sweep, const std::string& metric);

 private:
  Store(std::unique_ptr<Db> db, std::string path, bool readonly);
  Status migrate();
  Status check_version();
  Result<JobRecord> read_job(int64_t job_id);

  std::unique_ptr<Db> db_;
  std::string path_;
  bool readonly_ = false;
  int schema_version_ = 0;
  int transaction_depth_ = 0;
};

}  // namespace sweep
