// `sweep status [SWEEP]`: job counts per state, whether an orchestrator is running the sweep
// (and which process), every running job with its step, loss, tokens/s and ETA, each running
// pack (the jobs one worker process trains together, and its pid), the training
// done so far and saved by early stopping, the latest early-stopping decisions, the best job's
// objective beside the base model's own score (step 0) and its gain, and the jobs whose learning
// check failed (not learning) with the check's numbers, and each failed, diverged or infeasible
// job's first error line.
#include <algorithm>
#include <iostream>
#include <map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "orchestrator/cli/commands.h"
#include "orchestrator/cli/job_error.h"
#include "orchestrator/cli/output.h"
#include "orchestrator/run/early_stopping.h"
#include "orchestrator/run/live_display.h"
#include "orchestrator/run/results.h"
#include "orchestrator/run/run_lock.h"
#include "orchestrator/run/run_loop.h"

namespace sweep {

namespace {

struct StatusFlags {
  std::string sweep;
  std::string format = "table";
};

constexpr int64_t kMaxDecisionsShown = 20;

// Compute used and saved, and the latest early-stopping decisions (at most kMaxDecisionsShown) as
// `out["compute"]`, `out["decisions"]` (objects), `out["decision_lines"]` (for the table) and
// `out["decision_counts"]` (every decision of the sweep, per action).
Status add_stopping(Store& store, const SweepRecord& sweep, nlohmann::json& out) {
  auto report = compute_report(store, sweep.id);
  if (!report.ok()) return report.error();
  out["compute"] = {{"steps", report->steps},
                    {"tokens", report->tokens},
                    {"pruned_jobs", report->pruned},
                    {"saved_steps", report->saved_steps},
                    {"saved_tokens", report->saved_tokens}};
  auto counts = store.decision_counts(sweep.id);
  if (!counts.ok()) return counts.error();
  out["decision_counts"] = *counts;
  auto decisions = store.decisions(sweep.id, kMaxDecisionsShown);
  if (!decisions.ok()) return decisions.error();
  out["decisions"] = nlohmann::json::array();
  out["decision_lines"] = nlohmann::json::array();
  for (const RungDecision& d : *decisions) {
    out["decisions"].push_back({{"job", d.job_hash},
                                {"rung", d.rung},
                                {"rung_tokens", d.rung_tokens},
                                {"step", d.step},
                                {"tokens_seen", d.tokens_seen},
                                {"metric", d.metric},
                                {"value", d.value},
                                {"rank", d.rank},
                                {"peers", d.peers},
                                {"action", d.action},
                                {"rule", d.rule}});
    out["decision_lines"].push_back(describe_decision(d.job_hash, d));
  }
  return ok_status();
}

nlohmann::json opt_json(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

std::string opt_text(const std::optional<double>& v) {
  return v ? nlohmann::json(*v).dump() : std::string("?");
}

// The best ranked job with the base model's score and its gain as `out["best"]` (null before any
// evaluation after step 0), and every failed learning check as `out["not_learning"]`.
Status add_results(Store& store, const SweepRecord& sweep, nlohmann::json& out) {
  auto ranking = rank_jobs(store, sweep, "", 1);
  if (!ranking.ok()) return ranking.error();
  out["best"] = nlohmann::json();
  auto summary = store.leaderboard_summary(sweep.id, ranking->metric, ranking->maximize);
  if (!summary.ok()) return summary.error();
  const int beat_base = summary->beat_base;
  if (!ranking->rows.empty()) {
    const LeaderRow& b = ranking->rows.front();
    out["best"] = {
        {"job", b.hash},
        {"state", b.state},
        {"metric", ranking->metric},
        {"objective", opt_json(b.objective)},
        {"best_step", b.best_step},
        {"base_objective", opt_json(b.base_objective)},
        {"gain", opt_json(b.gain)},
        {"not_learning", b.not_learning},
        {"jobs_beating_base", beat_base},
        {"ranked_jobs", summary->ranked},
        {"line", "job " + b.hash + " at step " + std::to_string(b.best_step) + ": " +
                     describe_gain(b, ranking->metric) + "; " + std::to_string(beat_base) + " of " +
                     std::to_string(summary->ranked) + " ranked job(s) beat the base model"}};
  }
  auto checks = store.learning_checks(sweep.id, /*failed_only=*/true);
  if (!checks.ok()) return checks.error();
  std::vector<JobRecord> jobs;
  for (const auto& [id, check] : *checks) {
    auto job = store.get_job(id);
    if (!job.ok()) return job.error();
    jobs.push_back(std::move(*job));
  }
  std::sort(jobs.begin(), jobs.end(), [](const JobRecord& a, const JobRecord& b) {
    return std::make_pair(a.grid_index, a.id) < std::make_pair(b.grid_index, b.id);
  });
  out["not_learning"] = nlohmann::json::array();
  for (const JobRecord& j : jobs) {
    const LearningCheckRow& l = checks->at(j.id);
    out["not_learning"].push_back(
        {{"job", j.hash},
         {"step", l.step},
         {"lora_b_norm", opt_json(l.lora_b_norm)},
         {"lora_grad_norm", opt_json(l.lora_grad_norm)},
         {"loss_first", opt_json(l.loss_first)},
         {"loss_last", opt_json(l.loss_last)},
         {"reason", l.reason},
         {"line", "job " + j.hash + " at step " + std::to_string(l.step) + ": lora_b_norm " +
                      opt_text(l.lora_b_norm) + ", lora_grad_norm " + opt_text(l.lora_grad_norm) +
                      ", loss " + opt_text(l.loss_first) + " -> " + opt_text(l.loss_last) +
                      (l.reason.empty() ? "" : ": " + l.reason)}});
  }
  return ok_status();
}

constexpr int64_t kMaxFailedShown = 20;

// The failed, diverged and infeasible jobs with their first error line as `out["failed"]` (at
// most kMaxFailedShown, by grid index within each state; `out["failed_total"]` counts them all).
Status add_failed(Store& store, const SweepRecord& sweep, const std::map<JobState, int>& counts,
                  nlohmann::json& out) {
  out["failed"] = nlohmann::json::array();
  int64_t total = 0;
  for (JobState state : {JobState::kFailed, JobState::kDiverged, JobState::kInfeasible}) {
    total += counts.at(state);
    const int64_t room = kMaxFailedShown - static_cast<int64_t>(out["failed"].size());
    if (room <= 0 || counts.at(state) == 0) continue;
    auto jobs = store.list_jobs(sweep.id, state, room);
    if (!jobs.ok()) return jobs.error();
    for (const JobRecord& j : *jobs) {
      out["failed"].push_back(
          {{"job", j.hash}, {"state", to_string(j.state)}, {"error", job_error_line(j)}});
    }
  }
  out["failed_total"] = total;
  return ok_status();
}

Result<nlohmann::json> sweep_status(Store& store, const SweepRecord& sweep,
                                    const std::string& runs_dir) {
  nlohmann::json out{{"sweep", sweep.name}};
  auto counts = store.count_by_state(sweep.id);
  if (!counts.ok()) return counts.error();
  out["counts"] = nlohmann::json::object();
  for (const auto& [state, n] : *counts) out["counts"][to_string(state)] = n;
  out["counts_text"] = format_counts(*counts);
  // The database's lock names the orchestrator whatever its runs directory; an orchestrator of an
  // older version holds only runs/<sweep>/.lock.
  std::string holder = RunLock::holder(sweep_db_lock_path(store.path(), sweep.name));
  if (holder.empty()) holder = RunLock::holder(sweep_lock_path(runs_dir + "/" + sweep.name));
  out["orchestrator"] = holder.empty() ? nlohmann::json() : nlohmann::json(holder);
  auto running = store.list_jobs(sweep.id, JobState::kRunning);
  if (!running.ok()) return running.error();
  out["running"] = nlohmann::json::array();
  auto pack_ids = store.latest_pack_ids(sweep.id, JobState::kRunning);
  if (!pack_ids.ok()) return pack_ids.error();
  auto executor_ids = store.latest_executor_ids(sweep.id, JobState::kRunning);  // Slurm ids
  if (!executor_ids.ok()) return executor_ids.error();
  std::map<int64_t, nlohmann::json> packs;  // pack id -> {pack, pid, jobs}
  double now = unix_time_now();
  for (const JobRecord& j : *running) {
    auto pack = pack_ids->find(j.id);
    if (pack != pack_ids->end()) {
      nlohmann::json& p = packs[pack->second];
      if (p.is_null())
        p = {{"pack", pack->second}, {"pid", j.pid}, {"jobs", nlohmann::json::array()}};
      p["jobs"].push_back(j.hash);
    }
    auto latest = store.latest_metrics(j.id);
    if (!latest.ok()) return latest.error();
    auto params = nlohmann::json::parse(j.params_json, nullptr, false);
    RunningJob rj;
    rj.hash = j.hash;
    rj.attempt = j.attempt;
    rj.started_at = j.started_at;
    rj.progress.max_steps = params.is_object() ? params.value("max_steps", int64_t{0}) : 0;
    auto get = [&](const char* k) -> std::optional<double> {
      auto it = latest->find(k);
      return it == latest->end() ? std::nullopt : std::optional<double>(it->second);
    };
    rj.progress.step = static_cast<int64_t>(get("step").value_or(0));
    rj.progress.train_loss = get("train_loss");
    rj.progress.tokens_per_s = get("tokens_per_s");
    out["running"].push_back(
        {{"job", j.hash},
         {"pid", j.pid},
         {"executor_id",
          executor_ids->count(j.id) ? nlohmann::json(executor_ids->at(j.id)) : nlohmann::json()},
         {"device", j.device},
         {"attempt", j.attempt},
         {"pack", pack == pack_ids->end() ? nlohmann::json() : nlohmann::json(pack->second)},
         {"step", rj.progress.step},
         {"max_steps", rj.progress.max_steps},
         {"train_loss",
          rj.progress.train_loss ? nlohmann::json(*rj.progress.train_loss) : nlohmann::json()},
         {"line", format_job_line(rj, now)}});
  }
  out["packs"] = nlohmann::json::array();
  for (auto& [id, p] : packs) out["packs"].push_back(std::move(p));
  SWEEP_RETURN_IF_ERROR(add_stopping(store, sweep, out));
  SWEEP_RETURN_IF_ERROR(add_results(store, sweep, out));
  SWEEP_RETURN_IF_ERROR(add_failed(store, sweep, *counts, out));
  return out;
}

void print_table(const nlohmann::json& s) {
  std::cout << s["sweep"].get<std::string>() << ": " << s["counts_text"].get<std::string>();
  if (s["orchestrator"].is_string()) {
    std::cout << " (running: process " << s["orchestrator"].get<std::string>() << ")";
  }
  std::cout << "\n";
  for (const auto& r : s["running"]) {
    std::cout << "  " << r["line"].get<std::string>();
    if (r["executor_id"].is_string())
      std::cout << " (cluster job " << r["executor_id"].get<std::string>() << ")";
    std::cout << "\n";
  }
  for (const auto& p : s["packs"]) {
    std::cout << "  pack " << p["pack"].get<int64_t>() << " (pid " << p["pid"].get<int64_t>()
              << "): " << p["jobs"].size() << " jobs running in one worker:";
    for (const auto& job : p["jobs"]) std::cout << " " << job.get<std::string>();
    std::cout << "\n";
  }
  const nlohmann::json& c = s["compute"];
  std::cout << "  compute: " << c["steps"].get<int64_t>() << " steps, "
            << c["tokens"].get<int64_t>() << " tokens trained";
  if (c["pruned_jobs"].get<int>() > 0) {
    std::cout << "; early stopping saved " << c["saved_steps"].get<int64_t>() << " steps (~"
              << c["saved_tokens"].get<int64_t>() << " tokens) over " << c["pruned_jobs"].get<int>()
              << " pruned job(s)";
  }
  std::cout << "\n";
  if (!s["decision_lines"].empty()) {
    int64_t all = 0;
    for (const auto& [action, n] : s["decision_counts"].items()) all += n.get<int64_t>();
    std::cout << "  early-stopping decisions";
    if (all > static_cast<int64_t>(s["decision_lines"].size())) {
      std::cout << " (the latest " << s["decision_lines"].size() << " of " << all << ":";
      for (const auto& [action, n] : s["decision_counts"].items())
        std::cout << " " << n.get<int64_t>() << " " << action;
      std::cout << "; `sweep jobs " << s["sweep"].get<std::string>()
                << "` shows each job's latest)";
    }
    std::cout << ":\n";
  }
  for (const auto& line : s["decision_lines"])
    std::cout << "    " << line.get<std::string>() << "\n";
  if (s["best"].is_object())
    std::cout << "  best: " << s["best"]["line"].get<std::string>() << "\n";
  if (!s["not_learning"].empty()) std::cout << "  not learning (learning check failed):\n";
  for (const auto& c : s["not_learning"])
    std::cout << "    " << c["line"].get<std::string>() << "\n";
  if (!s["failed"].empty()) std::cout << "  failed (first error line):\n";
  for (const auto& f : s["failed"]) {
    const std::string error = f["error"].get<std::string>();
    std::cout << "    job " << f["job"].get<std::string>() << " " << f["state"].get<std::string>()
              << ": " << (error.empty() ? "(no error recorded)" : error) << "\n";
  }
  if (s["failed_total"].get<size_t>() > s["failed"].size()) {
    std::cout << "    ... and " << s["failed_total"].get<size_t>() - s["failed"].size()
              << " more (`sweep jobs " << s["sweep"].get<std::string>()
              << " --state failed` lists them)\n";
  }
}

void status_command(const StatusFlags& f, CliContext& ctx) {
  auto format = parse_output_format(f.format);
  if (!format.ok()) return ctx.fail(format.error());
  auto store = Store::open_readonly(ctx.db_path());
  if (!store.ok()) return ctx.fail(store.error());
  std::vector<SweepRecord> sweeps;
  if (!f.sweep.empty()) {
    auto one = (*store)->resolve_sweep(f.sweep);
    if (!one.ok()) return ctx.fail(one.error());
    sweeps.push_back(*one);
  } else {
    auto all = (*store)->list_sweeps();
    if (!all.ok()) return ctx.fail(all.error());
    sweeps = *all;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const SweepRecord& s : sweeps) {
    auto st = sweep_status(**store, s, ctx.runs_dir());
    if (!st.ok()) return ctx.fail(st.error());
    if (*format == OutputFormat::kTable) print_table(*st);
    st->erase("counts_text");
    st->erase("decision_lines");
    if ((*st)["best"].is_object()) (*st)["best"].erase("line");
    for (auto& c : (*st)["not_learning"]) c.erase("line");
    out.push_back(*st);
  }
  if (*format != OutputFormat::kTable) std::cout << out.dump(2) << "\n";
}

}  // namespace

void add_status_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<StatusFlags>();
  CLI::App* cmd = app.add_subcommand("status", "Jobs per state and the running jobs' progress");
  cmd->add_option("sweep", flags->sweep, "sweep name (default: every sweep)");
  cmd->add_option("--format", flags->format, "table | json (csv prints JSON too)");
  cmd->callback([flags, &ctx] { status_command(*flags, ctx); });
}

}  // namespace sweep
