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
  std::vector<LeaderRow> rows;  // best first; only succeeded and running jobs with evals
  int excluded_failed = 0;      // failed, diverged, lost: counted but not ranked
  int excluded_diverged = 0;
};

// `metric` empty: the sweep's objective metric. `top` <= 0: every row.
Result<Ranking> rank_jobs(Store& store, const SweepRecord& sweep, const std::string& metric, int top);

// The checkpoint directory of the best succeeded job. kNotFound with the reason when no job has
// finished, or when the best one kept no checkpoint at its best step.
Result<std::string> best_checkpoint(Store& store, const SweepRecord& sweep, const std::string& metric);

}  // namespace sweep
