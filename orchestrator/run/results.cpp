#include "orchestrator/run/results.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace sweep {

bool metric_maximized(const SweepRecord& sweep, const std::string& metric) {
  Objective objective = sweep.objective();
  if (metric == objective.metric) return objective.maximize();
  return default_objective_mode(metric) == Objective::Mode::kMax;
}

Result<Ranking> rank_jobs(Store& store, const SweepRecord& sweep, const std::string& metric,
                          int top) {
  Ranking r;
  r.metric = metric.empty() ? sweep.objective_metric : metric;
  r.maximize = metric_maximized(sweep, r.metric);
  auto rows = store.leaderboard(sweep.id, r.metric, r.maximize, std::max(top, 0));
  if (!rows.ok()) return rows.error();
  r.rows = std::move(*rows);
  auto counts = store.count_by_state(sweep.id);
  if (!counts.ok()) return counts.error();
  r.excluded_failed = (*counts)[JobState::kFailed] + (*counts)[JobState::kLost];
  r.excluded_diverged = (*counts)[JobState::kDiverged];
  return r;
}

namespace {

bool on_disk(const std::string& path) {
  std::error_code ec;
  return !path.empty() && fs::is_directory(path, ec);
}

std::string format_value(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// Why the best job's checkpoint at its best step cannot be used.
Result<std::string> why_gone(Store& store, const LeaderRow& row) {
  if (!row.checkpoint_path.empty()) {
    return row.checkpoint_path + " is recorded as kept but is not on disk";
  }
  auto checkpoints = store.checkpoints(row.job_id);
  if (!checkpoints.ok()) return checkpoints.error();
  std::string deleted;
  for (const CheckpointRow& c : *checkpoints) {
    if (c.step == row.best_step && !c.kept) deleted = c.path;
  }
  if (!deleted.empty()) return deleted + " was deleted by the worker's save_top_k retention";
  return std::string("no checkpoint was saved at that step");
}

}  // namespace

std::string describe_gain(const LeaderRow& row, const std::string& metric) {
  std::string text = metric + " " + (row.objective ? format_value(*row.objective) : "?");
  if (!row.base_objective) return text + " (no base score: the job has no step-0 evaluation)";
  text += " vs base " + format_value(*row.base_objective);
  if (row.gain)
    text += std::string(" (gain ") + (*row.gain >= 0 ? "+" : "") + format_value(*row.gain) + ")";
  return text;
}

Result<BestCheckpoint> best_checkpoint(Store& store, const SweepRecord& sweep,
                                       const std::string& metric, bool allow_no_gain) {
  // The best succeeded job is nearly always among the first few ranked (the others are running
  // or pruned); read the whole ranking only when it is not.
  auto ranking = rank_jobs(store, sweep, metric, 64);
  if (!ranking.ok()) return ranking.error();
  auto first_succeeded = [&]() -> const LeaderRow* {
    for (const LeaderRow& row : ranking->rows) {
      if (row.state == "succeeded") return &row;
    }
    return nullptr;
  };
  const LeaderRow* best = first_succeeded();
  if (!best && ranking->rows.size() == 64) {
    ranking = rank_jobs(store, sweep, metric, 0);
    if (!ranking.ok()) return ranking.error();
    best = first_succeeded();
  }
  if (!best) {
    return make_error(ErrorKind::kNotFound,
                      "no job of sweep '" + sweep.name + "' has finished with a " +
                          ranking->metric + " evaluation yet",
                      "see `sweep status " + sweep.name + "`");
  }
  std::string gain_note;
  if (!best->base_objective) {
    gain_note = "the base model has no " + ranking->metric +
                " score (no step-0 evaluation), so whether job " + best->hash +
                " beat it is not known";
  } else if (!(best->gain && *best->gain > 0)) {
    std::string why = "no job of sweep '" + sweep.name + "' beat the base model: the best, job " +
                      best->hash + " at step " + std::to_string(best->best_step) + ", has " +
                      describe_gain(*best, ranking->metric) +
                      (best->not_learning ? "; its learning check failed (not_learning)" : "");
    if (!allow_no_gain) {
      return make_error(ErrorKind::kNotFound, why,
                        "`sweep leaderboard " + sweep.name +
                            "` shows each job's gain and not_learning flag; check the learning "
                            "rate and the data (`sweep check-data --model`), or pass "
                            "--allow-no-gain to print the checkpoint anyway");
    }
    gain_note = why;
  }
  if (on_disk(best->checkpoint_path)) return BestCheckpoint{best->checkpoint_path, "", gain_note};

  auto why = why_gone(store, *best);
  if (!why.ok()) return why.error();
  std::string gone = "the best checkpoint, job " + best->hash + " at step " +
                     std::to_string(best->best_step) + " (" + ranking->metric + " " +
                     (best->objective ? format_value(*best->objective) : "?") +
                     "), is gone: " + *why;
  auto kept = store.kept_checkpoints(sweep.id, ranking->metric, ranking->maximize);
  if (!kept.ok()) return kept.error();
  for (const RankedCheckpoint& c : *kept) {
    if (!on_disk(c.path)) continue;
    return BestCheckpoint{c.path,
                          gone + "; using the best kept checkpoint instead: job " + c.hash +
                              " at step " + std::to_string(c.step) + " (" + ranking->metric + " " +
                              format_value(c.value) + "), " + c.path,
                          gain_note};
  }
  return make_error(
      ErrorKind::kNotFound, gone + "; no other kept checkpoint of a finished job is on disk",
      "raise save_top_k in the sweep file so that the best checkpoints are kept (the worker "
      "keeps the best save_top_k plus the latest); `sweep leaderboard` shows which "
      "are still kept");
}

Result<ComputeReport> compute_report(Store& store, int64_t sweep_id) {
  auto used = store.compute_used(sweep_id);
  if (!used.ok()) return used.error();
  ComputeReport r;
  r.steps = used->steps;
  r.tokens = used->tokens;
  auto pruned = store.job_progress(sweep_id, JobState::kPruned);
  if (!pruned.ok()) return pruned.error();
  for (const auto& [id, job] : *pruned) {
    ++r.pruned;
    const double step = static_cast<double>(job.steps);
    const double left = std::max(0.0, static_cast<double>(job.max_steps) - step);
    r.saved_steps += static_cast<int64_t>(left);
    if (step > 0)
      r.saved_tokens += static_cast<int64_t>(left * static_cast<double>(job.tokens) / step);
  }
  return r;
}

}  // namespace sweep
