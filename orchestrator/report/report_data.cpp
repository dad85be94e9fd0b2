#include "orchestrator/report/report_data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <set>

#include "orchestrator/report/downsample.h"
#include "orchestrator/run/results.h"

namespace sweep::report {

using json = nlohmann::json;

namespace {

// NaN and infinities have no JSON form: null. Whole numbers are written as integers and the rest
// with 6 significant digits: the page shows 4, and a 10,000-job report stays a few megabytes.
json number(double v) {
  if (!std::isfinite(v)) return nullptr;
  if (v == std::floor(v) && std::fabs(v) < 1e15) return static_cast<int64_t>(v);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return std::strtod(buf, nullptr);
}

json curve_json(const Curve& c) {
  json x = json::array(), y = json::array();
  for (double v : c.x) x.push_back(number(v));
  for (double v : c.y) y.push_back(number(v));
  return json{{"x", std::move(x)}, {"y", std::move(y)}};
}

// Keys whose value differs between jobs, in the order of the first job's params.
std::vector<std::string> swept_keys(const std::vector<json>& params) {
  std::vector<std::string> keys;
  if (params.empty()) return keys;
  std::set<std::string> all;
  for (const json& p : params)
    for (auto it = p.begin(); it != p.end(); ++it) all.insert(it.key());
  for (const std::string& k : all) {
    const json first = params[0].value(k, json());
    for (const json& p : params) {
      if (p.value(k, json()) != first) {
        keys.push_back(k);
        break;
      }
    }
  }
  return keys;
}

// Every curve point of the sweep, per job and metric, before thinning.
struct RawCurves {
  std::map<int64_t, std::map<std::string, Curve>> by_job;
  bool all_tokens = true;              // every point had tokens_seen
  std::map<std::string, double> base;  // step-0 evaluation
  std::set<std::string> eval_metrics;
  std::map<int64_t, std::pair<int64_t, std::optional<int64_t>>> reached;  // last step, tokens
};

Status read_curves(Store& store, int64_t sweep_id, RawCurves& raw) {
  auto add = [&raw](const CurvePoint& p) {
    Curve& c = raw.by_job[p.job_id][p.name];
    if (!p.tokens_seen) raw.all_tokens = false;
    c.x.push_back(p.tokens_seen ? static_cast<double>(*p.tokens_seen)
                                : static_cast<double>(p.step));
    c.y.push_back(p.value);
  };
  SWEEP_RETURN_IF_ERROR(
      store.for_each_curve_point(sweep_id, /*eval=*/false, "train_loss", [&](const CurvePoint& p) {
        raw.reached[p.job_id] = {p.step, p.tokens_seen};
        add(p);
      }));
  return store.for_each_curve_point(sweep_id, /*eval=*/true, "", [&](const CurvePoint& p) {
    raw.eval_metrics.insert(p.name);
    if (p.step == 0) {
      // Step 0 is the base model: a point at zero tokens, and the reference line.
      raw.base.emplace(p.name, p.value);
      CurvePoint at_zero = p;
      at_zero.tokens_seen = 0;
      add(at_zero);
      return;
    }
    add(p);
  });
}

json attempts_json(const std::vector<AttemptRecord>& attempts) {
  json out = json::array();
  for (const AttemptRecord& a : attempts) {
    out.push_back({{"attempt", a.attempt},
                   {"state", a.state},
                   {"exit_code", a.exit_code ? json(*a.exit_code) : json(nullptr)},
                   {"error", a.error},
                   {"host", a.host},
                   {"device", a.device},
                   {"started_at", a.started_at},
                   {"finished_at", a.finished_at}});
  }
  return out;
}

json checkpoints_json(const std::vector<CheckpointRow>& rows) {
  json out = json::array();
  for (const CheckpointRow& c : rows) {
    if (c.kept) out.push_back({{"step", c.step}, {"path", c.path}});
  }
  return out;
}

json predictions_json(const std::vector<PredictionRow>& rows) {
  json out = json::array();
  for (const PredictionRow& p : rows) {
    out.push_back({{"sample", p.sample},
                   {"id", p.sample_id},
                   {"prompt", p.prompt},
                   {"reference", p.reference},
                   {"prediction", p.prediction}});
  }
  return out;
}

json learning_check_json(const LearningCheckRow& c) {
  auto opt = [](const std::optional<double>& v) { return v ? number(*v) : json(nullptr); };
  return json{{"step", c.step},
              {"passed", c.passed},
              {"lora_b_norm", opt(c.lora_b_norm)},
              {"lora_grad_norm", opt(c.lora_grad_norm)},
              {"loss_first", opt(c.loss_first)},
              {"loss_last", opt(c.loss_last)},
              {"reason", c.reason}};
}

size_t points_per_curve(const ReportOptions& o, size_t curves) {
  if (curves == 0) return o.max_points;
  return std::clamp(o.total_points / curves, o.min_points, o.max_points);
}

}  // namespace

std::string first_line(const std::string& text) {
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  std::string line = text.substr(start, text.find('\n', start) - start);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

Result<json> build_report_data(Store& store, const SweepRecord& sweep,
                               const ReportOptions& options) {
  const Objective objective = sweep.objective();
  auto jobs = store.list_jobs(sweep.id);
  if (!jobs.ok()) return jobs.error();
  auto ranking = rank_jobs(store, sweep, "", 0);
  if (!ranking.ok()) return ranking.error();
  auto best = store.best_objectives(sweep.id, objective.metric, objective.maximize());
  if (!best.ok()) return best.error();
  auto checks = store.learning_checks(sweep.id);
  if (!checks.ok()) return checks.error();
  auto compute = compute_report(store, sweep.id);
  if (!compute.ok()) return compute.error();
  RawCurves raw;
  SWEEP_RETURN_IF_ERROR(read_curves(store, sweep.id, raw));

  std::map<int64_t, std::pair<int, const LeaderRow*>> ranked;
  for (size_t i = 0; i < ranking->rows.size(); ++i)
    ranked[ranking->rows[i].job_id] = {static_cast<int>(i + 1), &ranking->rows[i]};
  const auto base_it = raw.base.find(objective.metric);
  const bool has_base = base_it != raw.base.end();
  const double base_value = has_base ? base_it->second : 0.0;

  json doc;
  doc["sweep"] = {
      {"name", sweep.name},
      {"spec_path", sweep.spec_path},
      {"objective", {{"metric", objective.metric}, {"mode", to_string(objective.mode)}}}};
  doc["generated_at"] = static_cast<double>(std::time(nullptr));
  doc["axis"] = raw.all_tokens ? "tokens" : "step";
  doc["eval_metrics"] = raw.eval_metrics;
  json base = json::object();
  for (const auto& [name, value] : raw.base) base[name] = number(value);
  doc["base"] = base;

  std::vector<json> params;
  json jobs_json = json::array();
  std::map<std::string, int> states;
  json failures = json::array();
  double first_start = 0, last_end = 0, job_seconds = 0;
  for (const JobRecord& j : *jobs) {
    params.push_back(json::parse(j.params_json, nullptr, false));
    if (!params.back().is_object()) params.back() = json::object();
    ++states[to_string(j.state)];
    json row = {{"id", j.id},
                {"hash", j.hash},
                {"state", to_string(j.state)},
                {"params", params.back()},
                {"error", j.error},
                {"exit_code", j.exit_code ? json(*j.exit_code) : json(nullptr)},
                {"started_at", j.started_at},
                {"finished_at", j.finished_at}};
    auto obj = best->find(j.id);
    auto r = ranked.find(j.id);
    row["objective"] = obj == best->end() ? json(nullptr) : number(obj->second);
    // A ranked job's gain is over its own step-0 score; an unranked one's over the sweep's base.
    if (r != ranked.end()) {
      const LeaderRow& lr = *r->second.second;
      row["base_objective"] = lr.base_objective ? number(*lr.base_objective) : json(nullptr);
      row["gain"] = lr.gain ? number(*lr.gain) : json(nullptr);
    } else {
      row["base_objective"] = has_base ? number(base_value) : json(nullptr);
      row["gain"] =
          obj != best->end() && has_base
              ? number(objective.maximize() ? obj->second - base_value : base_value - obj->second)
              : json(nullptr);
    }
    auto check = checks->find(j.id);
    row["not_learning"] = check != checks->end() && !check->second.passed;
    row["learning_check"] =
        check == checks->end() ? json(nullptr) : learning_check_json(check->second);
    row["rank"] = r == ranked.end() ? json(nullptr) : json(r->second.first);
    row["best_step"] = r == ranked.end() ? json(nullptr) : json(r->second.second->best_step);
    row["checkpoint"] = r == ranked.end() ? "" : r->second.second->checkpoint_path;
    row["rung"] = r == ranked.end() || !r->second.second->rung ? json(nullptr)
                                                               : json(*r->second.second->rung);
    // Steps and tokens reached: the last training point.
    auto reached = raw.reached.find(j.id);
    row["steps"] = reached == raw.reached.end() ? json(nullptr) : json(reached->second.first);
    row["tokens"] = reached == raw.reached.end() || !reached->second.second
                        ? json(nullptr)
                        : json(*reached->second.second);
    auto attempts = store.attempts(j.id);
    if (!attempts.ok()) return attempts.error();
    row["attempts"] = attempts_json(*attempts);
    auto checkpoints = store.checkpoints(j.id);
    if (!checkpoints.ok()) return checkpoints.error();
    row["checkpoints"] = checkpoints_json(*checkpoints);
    json predictions = json::array();
    if (r != ranked.end()) {
      auto p = store.predictions(j.id, r->second.second->best_step);
      if (!p.ok()) return p.error();
      predictions = predictions_json(*p);
    }
    row["predictions"] = std::move(predictions);
    if (j.started_at > 0) {
      first_start = first_start == 0 ? j.started_at : std::min(first_start, j.started_at);
      const double end =
          j.finished_at > 0 ? j.finished_at : static_cast<double>(std::time(nullptr));
      last_end = std::max(last_end, end);
      job_seconds += std::max(0.0, end - j.started_at);
    }
    if (j.state == JobState::kFailed || j.state == JobState::kDiverged ||
        j.state == JobState::kLost) {
      failures.push_back({{"job", j.id},
                          {"hash", j.hash},
                          {"state", to_string(j.state)},
                          {"exit_code", row["exit_code"]},
                          {"error", first_line(j.error)}});
    }
    jobs_json.push_back(std::move(row));
  }
  // Parameters: the ones every job shares once, and per job only its swept values.
  const std::vector<std::string> keys = swept_keys(params);
  json fixed = params.empty() ? json::object() : params[0];
  for (const std::string& k : keys) fixed.erase(k);
  for (size_t i = 0; i < params.size(); ++i) {
    json own = json::object();
    for (const std::string& k : keys) {
      if (params[i].contains(k)) own[k] = params[i][k];
    }
    jobs_json[i]["params"] = std::move(own);
  }
  doc["swept_keys"] = keys;
  doc["fixed_params"] = std::move(fixed);
  doc["jobs"] = std::move(jobs_json);

  size_t curve_count = 0;
  for (const auto& [job, curves] : raw.by_job) curve_count += curves.size();
  const size_t points = points_per_curve(options, curve_count);
  json curves = json::object();
  for (const auto& [job, by_name] : raw.by_job) {
    json c = json::object();
    for (const auto& [name, curve] : by_name) c[name] = curve_json(downsample(curve, points));
    curves[std::to_string(job)] = std::move(c);
  }
  doc["curves"] = std::move(curves);

  json state_counts = json::object();
  for (const auto& [s, n] : states) state_counts[s] = n;
  doc["summary"] = {{"states", state_counts},
                    {"jobs", jobs->size()},
                    {"wall_s", last_end > first_start ? last_end - first_start : 0.0},
                    {"job_s", job_seconds},
                    {"compute",
                     {{"steps", compute->steps},
                      {"tokens", compute->tokens},
                      {"pruned", compute->pruned},
                      {"saved_steps", compute->saved_steps},
                      {"saved_tokens", compute->saved_tokens}}},
                    {"failures", std::move(failures)}};
  doc["limits"] = {
      {"points_per_curve", points}, {"overlay_jobs", options.overlay_jobs}, {"jobs", jobs->size()}};
  return doc;
}

}  // namespace sweep::report
