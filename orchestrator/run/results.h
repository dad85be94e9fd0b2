// Reading results for `sweep leaderboard` and `sweep best`: the ranking with its direction, and
// the best checkpoint. (Which sweep a command means is Store::resolve_sweep's.)
#pragma once

#include <string>
#include <vector>

#include "db/store.h"

namespace sweep {

// The direction of `metric`: the sweep's objective mode for its own metric; otherwise
// default_objective_mode (min for names containing "loss", max for the rest).
bool metric_maximized(const SweepRecord& sweep, const std::string& metric);

struct Ranking {
  std::string metric;
  bool maximize = false;
  std::vector<LeaderRow> rows;  // best first; only succeeded, pruned and running jobs with evals
  int excluded_failed = 0;      // failed, diverged, lost: counted but not ranked
  int excluded_diverged = 0;
};

// `metric` empty: the sweep's objective metric. `top` <= 0: every row.
Result<Ranking> rank_jobs(Store& store, const SweepRecord& sweep, const std::string& metric,
                          int top);

struct BestCheckpoint {
  std::string path;  // a checkpoint directory that exists on disk
  // Empty when `path` is the best succeeded job's checkpoint at its best step. Otherwise why
  // that one is gone (deleted by save_top_k, missing on disk, never saved) and which kept
  // checkpoint `path` is instead.
  std::string fallback;
  // Empty when the best job beat the base model. Otherwise why that is not known or not so: the
  // base model has no score (no step-0 evaluation), or (with allow_no_gain) the best job's gain.
  std::string gain_note;
};

// The checkpoint directory of the best succeeded job, checked on disk. When it is gone, the best
// kept checkpoint of a succeeded job that is on disk (ranked by its evaluation of `metric`), with
// the reason in `fallback`. kNotFound with the reason when no job has finished, or when no kept
// checkpoint is on disk (naming the best job and its missing path; hint: raise save_top_k).
// kNotFound when the best succeeded job does not beat the base model (its gain is <= 0), naming
// both scores, unless `allow_no_gain`, which returns it with the explanation in `gain_note`.
Result<BestCheckpoint> best_checkpoint(Store& store, const SweepRecord& sweep,
                                       const std::string& metric, bool allow_no_gain = false);

// "val_loss 2.31 vs base 2.35 (gain +0.04)" for a ranked row; "(no base score)" without one.
std::string describe_gain(const LeaderRow& row, const std::string& metric);

// What a sweep's training has cost so far and what early stopping saved (`sweep status`).
struct ComputeReport {
  int64_t steps = 0, tokens = 0;  // trained by all jobs so far
  int pruned = 0;                 // jobs stopped early
  // The steps the pruned jobs did not train (max_steps minus the step they stopped at), and the
  // tokens those steps would have been at each job's own tokens per step so far.
  int64_t saved_steps = 0, saved_tokens = 0;
};
Result<ComputeReport> compute_report(Store& store, int64_t sweep_id);

}  // namespace sweep
