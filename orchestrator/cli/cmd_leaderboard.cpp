// `sweep leaderboard [SWEEP] [--metric M] [--top N] [--format table|csv|json]`: jobs ranked by
// their best evaluation of the objective after step 0 (min or max per the sweep file), with the
// base model's own score (the job's step-0 evaluation), the gain over it, the not_learning flag
// of a failed learning check, and the step and checkpoint of that evaluation. Failed and
// diverged jobs are not ranked but counted. The checkpoint column shows only checkpoints still
// kept (a checkpoint the worker's save_top_k retention deleted has kept = 0 and shows empty). A
// table shows the best 20 unless --top says otherwise.
#include <algorithm>
#include <iostream>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "orchestrator/cli/commands.h"
#include "orchestrator/cli/output.h"
#include "orchestrator/run/results.h"

namespace sweep {

namespace {

const char* const kCoreParams[] = {"lora_r", "lora_alpha", "learning_rate", "batch_size"};

// Without --top a table shows the best kDefaultTableTop jobs (a 100,000-job sweep would print
// for seconds); csv and json, read by programs, carry every ranked job.
constexpr int kDefaultTableTop = 20;

struct LeaderboardFlags {
  std::string sweep;
  std::string metric;
  std::optional<int> top;  // 0: every ranked job
  std::string format = "table";
};

// Core LoRA keys first, then any other key whose value differs between the ranked jobs.
std::vector<std::string> param_columns(const std::vector<nlohmann::json>& params) {
  std::vector<std::string> cols(std::begin(kCoreParams), std::end(kCoreParams));
  std::set<std::string> core(cols.begin(), cols.end());
  if (params.empty()) return cols;
  for (auto it = params[0].begin(); it != params[0].end(); ++it) {
    if (core.count(it.key())) continue;
    for (const auto& p : params) {
      if (p.value(it.key(), nlohmann::json()) != it.value()) {
        cols.push_back(it.key());
        break;
      }
    }
  }
  return cols;
}

Cell json_cell(const nlohmann::json& v) {
  if (v.is_null()) return Cell::null();
  if (v.is_number()) return Cell::num(v.dump());
  if (v.is_string()) return Cell::str(v.get<std::string>());
  return Cell::str(v.dump());
}

// `ranked`/`ranked_beat_base`: every ranked job of the sweep and those that beat the base model,
// when the rows are only the top of the ranking.
void print_leaderboard(const Ranking& r, OutputFormat format, int ranked, int ranked_beat_base) {
  std::vector<nlohmann::json> params;
  std::set<std::string> other_metrics;
  for (const LeaderRow& row : r.rows) {
    params.push_back(nlohmann::json::parse(row.params_json, nullptr, false));
    for (const auto& [name, value] : row.metrics) {
      if (name != r.metric) other_metrics.insert(name);
    }
  }
  std::vector<std::string> pcols = param_columns(params);
  std::vector<std::string> columns{"rank", "job"};
  columns.insert(columns.end(), pcols.begin(), pcols.end());
  columns.push_back(r.metric);
  for (const char* c : {"base", "gain", "not_learning"}) columns.push_back(c);
  columns.insert(columns.end(), other_metrics.begin(), other_metrics.end());
  // With early stopping: the highest rung each job was judged at (a pruned job stopped there).
  const bool rungs = std::any_of(r.rows.begin(), r.rows.end(),
                                 [](const LeaderRow& row) { return row.rung.has_value(); });
  for (const char* c : {"step", "state"}) columns.push_back(c);
  if (rungs) columns.push_back("rung");
  columns.push_back("checkpoint");
  std::vector<Row> rows;
  int without_checkpoint = 0, beat_base = 0, not_learning = 0;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const LeaderRow& lr = r.rows[i];
    Row row{Cell::num(static_cast<long long>(i + 1)), Cell::str(lr.hash)};
    for (const auto& c : pcols) row.push_back(json_cell(params[i].value(c, nlohmann::json())));
    row.push_back(lr.objective ? Cell::num(*lr.objective) : Cell::null());
    row.push_back(lr.base_objective ? Cell::num(*lr.base_objective) : Cell::null());
    row.push_back(lr.gain ? Cell::num(*lr.gain) : Cell::null());
    row.push_back(Cell::num(static_cast<long long>(lr.not_learning ? 1 : 0)));
    if (lr.gain && *lr.gain > 0) ++beat_base;
    if (lr.not_learning) ++not_learning;
    for (const auto& m : other_metrics) {
      auto it = lr.metrics.find(m);
      row.push_back(it == lr.metrics.end() ? Cell::null() : Cell::num(it->second));
    }
    row.push_back(Cell::num(static_cast<long long>(lr.best_step)));
    row.push_back(Cell::str(lr.state));
    if (rungs) row.push_back(lr.rung ? Cell::num(static_cast<long long>(*lr.rung)) : Cell::null());
    row.push_back(lr.checkpoint_path.empty() ? Cell::null() : Cell::str(lr.checkpoint_path));
    if (lr.checkpoint_path.empty()) ++without_checkpoint;
    rows.push_back(std::move(row));
  }
  print_rows(std::cout, columns, rows, format);
  if (format == OutputFormat::kTable) {
    std::cout << "ranked by " << r.metric << " (" << (r.maximize ? "max" : "min")
              << ", best evaluation after step 0; base: the base model's score at step 0, "
                 "gain: over it, positive = better)";
    if (r.excluded_failed + r.excluded_diverged > 0) {
      std::cout << "; not ranked: " << r.excluded_failed << " failed/lost, " << r.excluded_diverged
                << " diverged";
    }
    std::cout << "\n";
    if (ranked > static_cast<int>(r.rows.size())) {
      std::cout << "showing the best " << r.rows.size() << " of " << ranked
                << " ranked jobs (--top N for more, --top 0 for every one)\n";
      beat_base = ranked_beat_base;
    }
    if (!r.rows.empty() && beat_base == 0) {
      std::cout << "no job beat the base model: training changed nothing the objective sees "
                   "(check the learning rate and `sweep check-data --model`)\n";
    }
    if (not_learning > 0) {
      std::cout << "not learning: " << not_learning
                << " job(s) failed the learning check (the adapter did not move); `sweep "
                   "status` shows the check's numbers\n";
    }
    if (without_checkpoint > 0) {
      std::cout << "no checkpoint: " << without_checkpoint
                << " job(s) kept none at their best step (save_top_k deleted it, or none was "
                   "saved there); `sweep best` falls back to the best kept one\n";
    }
  }
}

void leaderboard_command(const LeaderboardFlags& f, CliContext& ctx) {
  auto format = parse_output_format(f.format);
  if (!format.ok()) return ctx.fail(format.error());
  auto store = Store::open_readonly(ctx.db_path());
  if (!store.ok()) return ctx.fail(store.error());
  auto sweep = (*store)->resolve_sweep(f.sweep);
  if (!sweep.ok()) return ctx.fail(sweep.error());
  if (Status known = (*store)->check_eval_metric(*sweep, f.metric); !known.ok())
    return ctx.fail(known.error());
  if (f.top && *f.top < 0) {
    return ctx.fail(make_error(ErrorKind::kUser, "--top " + std::to_string(*f.top) + " is negative",
                               "give the number of jobs to show, or 0 for every one"));
  }
  const int top = f.top.value_or(*format == OutputFormat::kTable ? kDefaultTableTop : 0);
  auto ranking = rank_jobs(**store, *sweep, f.metric, top);
  if (!ranking.ok()) return ctx.fail(ranking.error());
  int ranked = static_cast<int>(ranking->rows.size()), beat_base = 0;
  if (top > 0 && ranked == top) {  // perhaps more: count them all
    auto summary = (*store)->leaderboard_summary(sweep->id, ranking->metric, ranking->maximize);
    if (!summary.ok()) return ctx.fail(summary.error());
    ranked = summary->ranked;
    beat_base = summary->beat_base;
  }
  print_leaderboard(*ranking, *format, ranked, beat_base);
}

}  // namespace

void add_leaderboard_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<LeaderboardFlags>();
  CLI::App* cmd = app.add_subcommand("leaderboard", "Rank a sweep's jobs by their best evaluation");
  cmd->add_option("sweep", flags->sweep, "sweep name (default: the only sweep in the database)");
  cmd->add_option("--metric", flags->metric, "eval metric to rank by (default: the objective)");
  cmd->add_option("--top", flags->top,
                  "show only the best N (0: every one; default: 20 in a table, all in csv/json)");
  cmd->add_option("--format", flags->format, "table | csv | json");
  cmd->callback([flags, &ctx] { leaderboard_command(*flags, ctx); });
}

}  // namespace sweep
