#include "orchestrator/run/results.h"

#include <filesystem>

namespace fs = std::filesystem;

namespace sweep {

bool metric_maximized(const SweepRecord& sweep, const std::string& metric) {
  Objective objective = sweep.objective();
  if (metric == objective.metric) return objective.maximize();
  return default_objective_mode(metric) == Objective::Mode::kMax;
}

Result<Ranking> rank_jobs(Store& store, const SweepRecord& sweep, const std::string& metric, int top) {
  Ranking r;
  r.metric = metric.empty() ? sweep.objective_metric : metric;
  r.maximize = metric_maximized(sweep, r.metric);
  auto rows = store.leaderboard(sweep.id, r.metric, r.maximize);
  if (!rows.ok()) return rows.error();
  r.rows = std::move(*rows);
  if (top > 0 && static_cast<int>(r.rows.size()) > top) r.rows.resize(static_cast<size_t>(top));
  auto counts = store.count_by_state(sweep.id);
  if (!counts.ok()) return counts.error();
  r.excluded_failed = (*counts)[JobState::kFailed] + (*counts)[JobState::kLost];
  r.excluded_diverged = (*counts)[JobState::kDiverged];
  return r;
}

Result<std::string> best_checkpoint(Store& store, const SweepRecord& sweep, const std::string& metric) {
  auto ranking = rank_jobs(store, sweep, metric, 0);
  if (!ranking.ok()) return ranking.error();
  for (const LeaderRow& row : ranking->rows) {
    if (row.state != "succeeded") continue;
    if (row.checkpoint_path.empty()) {
      return make_error(ErrorKind::kNotFound,
                        "the best job " + row.hash + " kept no checkpoint at its best step " +
                            std::to_string(row.best_step),
                        "raise save_top_k, or see `sweep leaderboard` for the others");
    }
    return row.checkpoint_path;
  }
  return make_error(ErrorKind::kNotFound,
                    "no job of sweep '" + sweep.name + "' has finished with a " + ranking->metric +
                        " evaluation yet",
                    "see `sweep status " + sweep.name + "`");
}

}  // namespace sweep
