#include "orchestrator/run/early_stopping.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "orchestrator/spec/stopping_spec.h"

namespace sweep {
namespace {

// true when a is strictly better than b under `mode`.
bool better(double a, double b, Objective::Mode mode) {
  return mode == Objective::Mode::kMax ? a > b : a < b;
}

int rank_of(double value, const std::vector<double>& others, Objective::Mode mode) {
  return 1 + static_cast<int>(std::count_if(others.begin(), others.end(),
                                            [&](double o) { return better(o, value, mode); }));
}

int64_t param_or(const nlohmann::json& params, const char* key, int64_t fallback) {
  auto it = params.find(key);
  return it != params.end() && it->is_number() ? it->get<int64_t>() : fallback;
}

}  // namespace

Verdict asha_verdict(double value, const std::vector<double>& others, double reduction_factor,
                     Objective::Mode mode) {
  std::vector<double> all = others;
  all.push_back(value);
  std::sort(all.begin(), all.end(), [&](double a, double b) { return better(a, b, mode); });
  const auto n = static_cast<int>(all.size());
  const int keep = std::max(1, static_cast<int>(std::floor(n / reduction_factor)));
  Verdict v;
  v.peers = n;
  v.rank = rank_of(value, others, mode);
  v.compared_to = all[static_cast<size_t>(keep - 1)];
  v.stop = better(v.compared_to, value, mode);
  return v;
}

Verdict median_verdict(double best_so_far, const std::vector<double>& others_running_mean,
                       int min_peers, Objective::Mode mode) {
  Verdict v;
  v.peers = static_cast<int>(others_running_mean.size()) + 1;
  v.rank = rank_of(best_so_far, others_running_mean, mode);
  if (static_cast<int>(others_running_mean.size()) < min_peers || others_running_mean.empty()) {
    v.compared_to = std::numeric_limits<double>::quiet_NaN();
    return v;
  }
  std::vector<double> sorted = others_running_mean;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  v.compared_to = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  v.stop = better(v.compared_to, best_so_far, mode);
  return v;
}

EarlyStopper::EarlyStopper(Store& store, int64_t sweep_id, EarlyStoppingSpec spec)
    : store_(store),
      sweep_id_(sweep_id),
      spec_(std::move(spec)),
      all_rungs_(rung_tokens(spec_, std::numeric_limits<int64_t>::max())) {}

Status EarlyStopper::load() {
  auto all = store_.decisions(sweep_id_);
  if (!all.ok()) return all.error();
  decisions_.clear();
  stale_ = 0;
  for (RungDecision& d : *all) {
    if (!current(d)) ++stale_;
    decisions_[d.job_id][d.rung] = std::move(d);
  }
  return ok_status();
}

bool EarlyStopper::current(const RungDecision& d) const {
  return d.rule == to_string(spec_.rule) && d.metric == spec_.objective.metric && d.rung >= 0 &&
         static_cast<size_t>(d.rung) < all_rungs_.size() &&
         d.rung_tokens == all_rungs_[static_cast<size_t>(d.rung)];
}

std::vector<int64_t> EarlyStopper::rungs_for(const nlohmann::json& params) const {
  if (!params.contains("max_steps")) return all_rungs_;  // no bound known
  const int64_t bound = param_or(params, "max_steps", 0) * param_or(params, "batch_size", 1) *
                        param_or(params, "gradient_accumulation_steps", 1) *
                        param_or(params, "model_max_length", 2048);
  return rung_tokens(spec_, bound);
}

std::vector<double> EarlyStopper::others_at(int rung, int64_t job_id) const {
  std::vector<double> values;
  for (const auto& [other, rungs] : decisions_) {
    if (other == job_id) continue;
    auto it = rungs.find(rung);
    if (it == rungs.end() || !current(it->second)) continue;
    if (spec_.rule == EarlyStoppingSpec::Rule::kAsha) {
      values.push_back(it->second.value);
    } else {  // median: the other job's mean over rungs 0..rung
      double sum = 0;
      int count = 0;
      for (const auto& [r, d] : rungs) {
        if (r > rung) break;
        if (!current(d)) continue;
        sum += d.value;
        ++count;
      }
      values.push_back(sum / count);
    }
  }
  return values;
}

std::vector<double> EarlyStopper::own_values(int64_t job_id, int rung) const {
  std::vector<double> values;
  auto it = decisions_.find(job_id);
  if (it == decisions_.end()) return values;
  for (const auto& [r, d] : it->second) {
    if (r <= rung && current(d)) values.push_back(d.value);
  }
  return values;
}

Result<std::vector<RungDecision>> EarlyStopper::judge(int64_t job_id, double now) {
  std::vector<RungDecision> made;
  if (stop_of(job_id)) return made;
  auto evals = store_.evals_with_tokens(job_id, spec_.objective.metric);
  if (!evals.ok()) return evals.error();
  for (size_t k = 0; k < all_rungs_.size(); ++k) {
    const int rung = static_cast<int>(k);
    if (decisions_[job_id].count(rung)) continue;
    // The job's evaluation at the rung: the first one at or past its tokens.
    auto at = std::find_if(evals->begin(), evals->end(),
                           [&](const auto& e) { return std::get<1>(e) >= all_rungs_[k]; });
    if (at == evals->end()) break;
    RungDecision d;
    d.job_id = job_id;
    d.rung = rung;
    d.rung_tokens = all_rungs_[k];
    d.step = std::get<0>(*at);
    d.tokens_seen = std::get<1>(*at);
    d.metric = spec_.objective.metric;
    d.value = std::get<2>(*at);
    d.rule = to_string(spec_.rule);
    d.decided_at = now;
    Verdict v;
    if (spec_.rule == EarlyStoppingSpec::Rule::kAsha) {
      v = asha_verdict(d.value, others_at(rung, job_id), spec_.reduction_factor,
                       spec_.objective.mode);
    } else {
      double best = d.value;
      for (double earlier : own_values(job_id, rung)) {
        if (better(earlier, best, spec_.objective.mode)) best = earlier;
      }
      v = median_verdict(best, others_at(rung, job_id), spec_.min_peers, spec_.objective.mode);
    }
    d.action = v.stop ? "stop" : "continue";
    d.rank = v.rank;
    d.peers = v.peers;
    d.compared_to = v.compared_to;
    auto added = store_.add_decision(d);
    if (!added.ok()) return added.error();
    decisions_[job_id][rung] = d;
    made.push_back(d);
    if (v.stop) break;
  }
  return made;
}

std::optional<RungDecision> EarlyStopper::stop_of(int64_t job_id) const {
  auto it = decisions_.find(job_id);
  if (it == decisions_.end()) return std::nullopt;
  for (const auto& [rung, d] : it->second) {
    if (d.action == "stop") return d;
  }
  return std::nullopt;
}

std::string describe_decision(const std::string& hash, const RungDecision& d) {
  std::ostringstream out;
  out << "job " << hash << " rung " << d.rung << " (" << format_token_count(d.rung_tokens)
      << " tokens, step " << d.step << "): " << d.metric << " " << d.value << ", rank " << d.rank
      << " of " << d.peers;
  if (!std::isnan(d.compared_to)) {
    out << " (" << (d.rule == "asha" ? "cutoff " : "median ") << d.compared_to << ")";
  }
  out << ": " << d.action;
  return out.str();
}

}  // namespace sweep
