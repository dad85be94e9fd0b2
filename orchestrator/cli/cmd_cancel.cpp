// `sweep cancel SWEEP`: no more jobs of this sweep run. With an orchestrator running it, that
// orchestrator is asked (through runs/<sweep>/.cancel) to stop its workers and record them and
// every pending job as cancelled, and this command waits for it. Without one, the database is
// updated directly and any worker left running from a crashed orchestrator is sent SIGTERM (a
// Slurm job, found by its recorded id, is cancelled with scancel).
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>

#include "common/file_system.h"
#include "orchestrator/cli/commands.h"
#include "orchestrator/run/local_executor.h"
#include "orchestrator/run/run_lock.h"
#include "orchestrator/run/run_loop.h"
#include "orchestrator/run/slurm_executor.h"

namespace sweep {

namespace {

struct CancelFlags {
  std::string sweep;
  double wait_s = 120;
};

// SIGTERM to a worker a crashed orchestrator left running, when it is still this job's.
void stop_leftover_worker(Executor& executor, const JobRecord& job) {
  if (job.host != host_name()) return;
  for (int64_t pid : executor.find_workers(job.run_dir + "/job.json")) {
    if (pid == job.pid) executor.terminate(ProcessHandle{pid, false, ""});
  }
}

Status cancel_in_db(Store& store, const SweepRecord& sweep, int* cancelled) {
  auto jobs = store.list_jobs(sweep.id);
  if (!jobs.ok()) return jobs.error();
  auto executor_ids = store.latest_executor_ids(sweep.id);
  if (!executor_ids.ok()) return executor_ids.error();
  LocalExecutor executor;
  SlurmExecutor slurm(SlurmSpec{}, 1);
  return store.transaction([&]() -> Status {
    for (const JobRecord& j : *jobs) {
      if (j.state == JobState::kRunning) {
        auto id = executor_ids->find(j.id);
        if (id != executor_ids->end()) {
          ProcessHandle handle{j.pid, false, id->second};
          if (slurm.still_running(handle, j.run_dir + "/job.json")) slurm.kill(handle);
        } else {
          stop_leftover_worker(executor, j);
        }
        SWEEP_RETURN_IF_ERROR(
            store.finish_attempt(j.id, JobState::kCancelled, std::nullopt, "cancelled"));
      } else if (j.state == JobState::kPending || j.state == JobState::kLost) {
        SWEEP_RETURN_IF_ERROR(store.set_state(j.id, JobState::kCancelled, "cancelled"));
      } else {
        continue;
      }
      ++*cancelled;
    }
    return ok_status();
  });
}

void cancel_command(const CancelFlags& f, CliContext& ctx) {
  auto store = Store::open(ctx.db_path());
  if (!store.ok()) return ctx.fail(store.error());
  auto sweep = (*store)->resolve_sweep(f.sweep);
  if (!sweep.ok()) return ctx.fail(sweep.error());
  // The orchestrator is found through the database's lock, which names its run directory.
  std::string db_lock = sweep_db_lock_path(ctx.db_path(), sweep->name);
  std::string holder = RunLock::holder(db_lock);
  std::string dir = RunLock::holder_sweep_dir(db_lock);
  if (dir.empty()) dir = ctx.runs_dir() + "/" + sweep->name;
  if (!holder.empty()) {
    auto asked = capture(
        [&] { write_file_atomic(cancel_request_path(dir), std::to_string(::getpid()) + "\n"); });
    if (!asked.ok()) return ctx.fail(asked.error());
    std::cerr << "asked the orchestrator (process " << holder << ") to cancel sweep " << sweep->name
              << "\n";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(f.wait_s);
    while (!RunLock::holder(db_lock).empty()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return ctx.fail(make_error(ErrorKind::kConflict,
                                   "the orchestrator is still stopping its workers",
                                   "see `sweep status " + sweep->name + "`"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::cerr << "cancelled\n";
    return;
  }
  int cancelled = 0;
  if (auto st = cancel_in_db(**store, *sweep, &cancelled); !st.ok()) return ctx.fail(st.error());
  std::cerr << "cancelled " << cancelled << " job(s) of sweep " << sweep->name << "\n";
}

}  // namespace

void add_cancel_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<CancelFlags>();
  CLI::App* cmd =
      app.add_subcommand("cancel", "Stop a sweep: running and pending jobs become cancelled");
  cmd->add_option("sweep", flags->sweep, "sweep name")->required();
  cmd->add_option("--wait", flags->wait_s,
                  "seconds to wait for a running orchestrator (default 120)");
  cmd->callback([flags, &ctx] { cancel_command(*flags, ctx); });
}

}  // namespace sweep
