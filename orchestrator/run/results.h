// Reading results for `sweep status`, `sweep leaderboard` and `sweep best`: which sweep a command
// means, the ranking with its direction, and the best checkpoint.
#pragma once

#include <string>
#include <vector>

#include "db/store.h"

namespace sweep {

// The sweep named `name`; with an empty name, the most recently created one.
// kNotFound naming the sweep (and the known ones in the hint) otherwise.
Result<SweepRecord> find_sweep_or_latest(Store& store, const std::string& name);

// The direction of `metric`: the sweep's objective mode for its own metric; otherwise min for
// names containing "loss", max for the rest (accuracy, exact match).
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
