// The executor for a Slurm cluster (docs/slurm.md): each worker (one job, or a pack) is one
// Slurm batch job. launch writes the batch script into the job's run directory (kept there) and
// submits it with `sbatch --parsable` (an argv through Boost.Process, never a shell line); the
// worker's stdout and stderr go to the run directory; the Slurm job id is the handle's
// executor_id (and, as a number, its pid). poll reads squeue (at most once per refresh
// interval for all jobs), then scontrol, then sacct when accounting is available, for a job that
// left the queue. terminate is `scancel --signal=TERM --full` (the worker checkpoints and
// stops; a job still queued is simply cancelled), kill is `scancel`.
//
// The run directories must be on a file system shared by this host and the compute nodes: the
// worker's events.jsonl there stays the source of every metric.
//
// Not thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "orchestrator/run/executor.h"
#include "orchestrator/run/slurm_commands.h"
#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

// A finished command: its exit status and what it printed.
struct CommandOutput {
  int exit_code = 0;
  std::string out, err;
};
// Runs argv (argv[0] looked up in PATH) and waits for it. kNotFound when argv[0] is missing.
Result<CommandOutput> run_command(const std::vector<std::string>& argv);

class SlurmExecutor : public Executor {
 public:
  // `cpus`: --cpus-per-task when slurm.cpus_per_job is 0 (the sweep's threads_per_job).
  SlurmExecutor(SlurmSpec slurm, int cpus);

  // kNotFound when sbatch is missing; kIo when sbatch refuses the job (its message kept).
  Result<ProcessHandle> launch(const LaunchRequest& request) override;
  PollResult poll(const ProcessHandle& handle) override;
  void terminate(const ProcessHandle& handle) override;
  void kill(const ProcessHandle& handle) override;
  // Queued or running Slurm jobs of this user whose batch script names `job_json`.
  std::vector<int64_t> find_workers(const std::string& job_json) override;
  bool alive(int64_t pid) override;
  bool still_running(const ProcessHandle& handle, const std::string& job_json) override;
  std::string describe(const ProcessHandle& handle) const override;
  bool host_bound() const override { return false; }

 private:
  // Refreshes the squeue snapshot when older than the refresh interval (or when `force`).
  void refresh(bool force = false);
  // The job's final state from scontrol, else sacct; nullopt when neither knows it.
  std::optional<SlurmJobInfo> final_info(const std::string& id);
  bool script_names(const std::string& script_path, const std::string& job_json);
  static std::string id_of(const ProcessHandle& handle);

  SlurmSpec slurm_;
  int cpus_ = 1;
  std::map<std::string, SqueueRow> queue_;  // the last squeue, by job id
  std::chrono::steady_clock::time_point refreshed_at_{};
  bool queue_valid_ = false;
  std::set<std::string> signalled_;                 // jobs this executor cancelled or signalled
  std::map<std::string, PollResult> finished_;      // final results, asked once
  std::map<std::string, std::string> script_text_;  // batch scripts read by find_workers
};

}  // namespace sweep
