// `sweep retry SWEEP [--state failed]...`: puts the sweep's jobs in the given states back to
// pending with a fresh retry budget (orchestrator/run/retry_policy.h); their earlier attempts and
// metrics are kept, and the next attempt resumes from the job's latest checkpoint. A running
// orchestrator picks them up within a second; otherwise `sweep run` with the sweep file runs them.
#include <iostream>

#include "orchestrator/cli/commands.h"
#include "orchestrator/run/retry_policy.h"
#include "orchestrator/run/run_lock.h"
#include "orchestrator/run/run_loop.h"

namespace sweep {

namespace {

struct RetryFlags {
  std::string sweep;
  std::vector<std::string> states{"failed"};
};

Result<std::vector<JobState>> parse_states(const std::vector<std::string>& names) {
  std::vector<JobState> out;
  for (const auto& n : names) {
    auto s = parse_job_state(n);
    if (s == JobState::kPruned) {
      return make_error(ErrorKind::kUser,
                        "--state: pruned jobs cannot be retried: early stopping's decision stands",
                        "to train one to the end, put its settings in a new sweep (include:)");
    }
    if (!s || !can_retry_from(*s)) {
      return make_error(ErrorKind::kUser, "--state: '" + n + "' cannot be retried",
                        "use failed, diverged, cancelled, lost or succeeded");
    }
    out.push_back(*s);
  }
  return out;
}

void retry_command(const RetryFlags& f, CliContext& ctx) {
  auto states = parse_states(f.states);
  if (!states.ok()) return ctx.fail(states.error());
  auto store = Store::open(ctx.db_path());
  if (!store.ok()) return ctx.fail(store.error());
  auto sweep = (*store)->resolve_sweep(f.sweep);
  if (!sweep.ok()) return ctx.fail(sweep.error());
  auto n = requeue_for_retry(**store, sweep->id, *states);
  if (!n.ok()) return ctx.fail(n.error());
  std::cerr << "re-queued " << *n << " job(s) of sweep " << sweep->name << "\n";
  if (*n == 0) return;
  if (RunLock::holder(sweep_db_lock_path(ctx.db_path(), sweep->name)).empty()) {
    std::cerr << "run them with: sweep run " << sweep->spec_path << "\n";
  } else {
    std::cerr << "the running orchestrator picks them up\n";
  }
}

}  // namespace

void add_retry_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<RetryFlags>();
  CLI::App* cmd = app.add_subcommand("retry", "Re-queue a sweep's failed (or other) jobs");
  cmd->add_option("sweep", flags->sweep, "sweep name")->required();
  cmd->add_option("--state", flags->states, "state(s) to re-queue (default: failed)");
  cmd->callback([flags, &ctx] { retry_command(*flags, ctx); });
}

}  // namespace sweep
