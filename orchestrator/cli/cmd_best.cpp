// `sweep best [SWEEP] [--metric M]`: prints the best finished job's checkpoint directory and
// nothing else, so that it composes: `sweep merge $(sweep best) --out merged/`.
#include <iostream>

#include "orchestrator/cli/commands.h"
#include "orchestrator/run/results.h"

namespace sweep {

namespace {

struct BestFlags {
  std::string sweep;
  std::string metric;
};

void best_command(const BestFlags& f, CliContext& ctx) {
  auto store = Store::open_readonly(ctx.db_path());
  if (!store.ok()) return ctx.fail(store.error());
  auto sweep = (*store)->resolve_sweep(f.sweep);
  if (!sweep.ok()) return ctx.fail(sweep.error());
  auto path = best_checkpoint(**store, *sweep, f.metric);
  if (!path.ok()) return ctx.fail(path.error());
  std::cout << *path << "\n";
}

}  // namespace

void add_best_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<BestFlags>();
  CLI::App* cmd = app.add_subcommand("best", "Print the best checkpoint directory of a sweep");
  cmd->add_option("sweep", flags->sweep, "sweep name (default: the only sweep in the database)");
  cmd->add_option("--metric", flags->metric, "eval metric to rank by (default: the objective)");
  cmd->callback([flags, &ctx] { best_command(*flags, ctx); });
}

}  // namespace sweep
