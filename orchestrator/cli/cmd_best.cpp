// `sweep best [SWEEP] [--metric M] [--allow-no-gain]`: prints the best finished job's checkpoint
// directory and nothing else, so that it composes: `sweep merge $(sweep best) --out merged/`. The
// path is always on disk: when the best checkpoint is gone (deleted by save_top_k, or removed by
// hand) it prints the best kept one instead and says so on stderr, or fails (exit 1) when none is
// left. Step 0 (the base model) is never a job's best; when the best job does not beat the base
// model's own score it fails (exit 1) saying so, unless --allow-no-gain.
#include <iostream>

#include "orchestrator/cli/commands.h"
#include "orchestrator/run/results.h"

namespace sweep {

namespace {

struct BestFlags {
  std::string sweep;
  std::string metric;
  bool allow_no_gain = false;
};

void best_command(const BestFlags& f, CliContext& ctx) {
  auto store = Store::open_readonly(ctx.db_path());
  if (!store.ok()) return ctx.fail(store.error());
  auto sweep = (*store)->resolve_sweep(f.sweep);
  if (!sweep.ok()) return ctx.fail(sweep.error());
  if (Status known = (*store)->check_eval_metric(*sweep, f.metric); !known.ok())
    return ctx.fail(known.error());
  auto best = best_checkpoint(**store, *sweep, f.metric, f.allow_no_gain);
  if (!best.ok()) return ctx.fail(best.error());
  if (!best->gain_note.empty()) std::cerr << "warning: " << best->gain_note << "\n";
  if (!best->fallback.empty()) std::cerr << "warning: " << best->fallback << "\n";
  std::cout << best->path << "\n";
}

}  // namespace

void add_best_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<BestFlags>();
  CLI::App* cmd = app.add_subcommand("best", "Print the best checkpoint directory of a sweep");
  cmd->add_option("sweep", flags->sweep, "sweep name (default: the only sweep in the database)");
  cmd->add_option("--metric", flags->metric, "eval metric to rank by (default: the objective)");
  cmd->add_flag("--allow-no-gain", flags->allow_no_gain,
                "print the best checkpoint even when no job beat the base model (step 0)");
  cmd->callback([flags, &ctx] { best_command(*flags, ctx); });
}

}  // namespace sweep
