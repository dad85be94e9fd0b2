// Early stopping (docs/sweep-file.md, `early_stopping`; docs/running.md): jobs are judged at
// rungs placed by training tokens seen, each the moment its own evaluation at the rung is stored,
// against the values other jobs recorded at that rung so far (asynchronous: nobody waits for a
// full rung). Every verdict is a `decisions` row, written once, so that a restarted orchestrator
// keeps them all.
//
// ASHA (asynchronous successive halving, Li et al. 2020, "A System for Massively Parallel
// Hyperparameter Tuning"): with n values at rung k (the job's own included), the best
// max(1, floor(n / reduction_factor)) continue; a job is stopped when its value is strictly
// worse than the last of those. The first job at a rung always continues, the rule Optuna's
// SuccessiveHalvingPruner applies for the same reason: nothing to compare with yet.
//
// Median stopping (Golovin et al. 2017, "Google Vizier"): a job is stopped at rung k when its
// best value up to rung k is strictly worse than the median, over the other jobs judged at rung
// k, of their mean value over rungs 0..k; only once at least min_peers other jobs were judged
// there.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "db/store.h"
#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

// One verdict of a rule on one value, before it is recorded.
struct Verdict {
  bool stop = false;
  int rank = 1;            // 1 = best, among `peers`
  int peers = 1;           // values compared, the job's own included
  double compared_to = 0;  // the cutoff (asha) or the peers' median (median); NaN: none
};

// ASHA at one rung: `value` against `others` (the values other jobs recorded at the rung).
Verdict asha_verdict(double value, const std::vector<double>& others, double reduction_factor,
                     Objective::Mode mode);
// Median rule at one rung: the job's best value up to the rung against the others' running
// means up to the rung. `rank` is the job's rank by best value among the others' running means.
Verdict median_verdict(double best_so_far, const std::vector<double>& others_running_mean,
                       int min_peers, Objective::Mode mode);

class EarlyStopper {
 public:
  EarlyStopper(Store& store, int64_t sweep_id, EarlyStoppingSpec spec);

  // Loads the decisions recorded so far (call once before judge).
  Status load();
  // The rungs a job with these params must evaluate at (JobFile::eval_at_tokens): those below a
  // bound on its training tokens (max_steps x batch x accumulation x model_max_length).
  std::vector<int64_t> rungs_for(const nlohmann::json& params) const;
  // Judges every rung the job's stored evaluations reached without a verdict yet, in rung order,
  // and records each. Returns the new decisions (the last one is a stop when the job must stop).
  Result<std::vector<RungDecision>> judge(int64_t job_id, double now);
  // The job's recorded stop decision, if any (under whatever configuration it was made: a stop
  // stands).
  std::optional<RungDecision> stop_of(int64_t job_id) const;
  // Decisions recorded under another early_stopping section (rule, metric or rungs changed since):
  // they stand, but their values are not compared with. How many load() found.
  int stale_decisions() const { return stale_; }
  const EarlyStoppingSpec& spec() const { return spec_; }

 private:
  // Values recorded at `rung` by jobs other than `job_id`.
  std::vector<double> others_at(int rung, int64_t job_id) const;
  // Whether `d` was made under this configuration (same rule, metric and rung placement).
  bool current(const RungDecision& d) const;
  // The job's values at rungs 0..`rung` that are recorded (by rung).
  std::vector<double> own_values(int64_t job_id, int rung) const;

  Store& store_;
  int64_t sweep_id_;
  EarlyStoppingSpec spec_;
  std::vector<int64_t> all_rungs_;  // the rungs without a bound, for judging stored evals
  // job id -> rung -> decision.
  std::map<int64_t, std::map<int, RungDecision>> decisions_;
  int stale_ = 0;
};

// One human line on a decision, e.g.
// "job 3f2a... rung 1 (60k tokens): val_loss 1.234, rank 4 of 6 (cutoff 1.100): stop".
std::string describe_decision(const std::string& hash, const RungDecision& d);

}  // namespace sweep
