// The pure half of the Slurm executor (docs/slurm.md): the sbatch argv and batch script built
// from a sweep's resources, the parsing of sbatch / squeue / scontrol / sacct output, and how a
// Slurm job state maps onto the run loop's PollResult. No processes here, so all of it is unit
// tested without a cluster (tests/slurm/slurm_commands_test.cpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "orchestrator/run/executor.h"
#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

// The batch script for one worker: bash, the request's environment exported, its working
// directory entered, then `exec` of the worker argv (so Slurm's signals reach the worker
// itself). Every value is single-quoted.
std::string slurm_batch_script(const LaunchRequest& request);

// `sbatch --parsable ...` for a batch script at `script_path`: job name, run directory, logs,
// one node and task, cpus, and the resources' partition, account, qos, memory, time limit, gres
// and extra arguments. `cpus` is used when slurm.cpus_per_job is 0.
std::vector<std::string> sbatch_argv(const SlurmSpec& slurm, int cpus, const LaunchRequest& request,
                                     const std::string& script_path);

// The job id `sbatch --parsable` printed ("42" or "42;cluster"); nullopt when there is none.
std::optional<std::string> parse_sbatch_id(const std::string& output);

// One line of `squeue --noheader --format=%i|%T|%o`: job id, state, command (the batch script).
struct SqueueRow {
  std::string id, state, command;
};
std::vector<SqueueRow> parse_squeue(const std::string& output);
// The squeue --format that parse_squeue reads.
inline constexpr const char* kSqueueFormat = "%i|%T|%o";

// What `scontrol show job -o ID` (or one `sacct -P -n -X -o JobID,State,ExitCode` line) says
// of a job: its state ("COMPLETED", "CANCELLED", ...; sacct's "CANCELLED by 0" is cut to the
// state) and exit code "CODE:SIGNAL". nullopt when the output names no state.
struct SlurmJobInfo {
  std::string state;
  int exit_code = 0;
  int signal = 0;
};
std::optional<SlurmJobInfo> parse_scontrol_job(const std::string& output);
std::optional<SlurmJobInfo> parse_sacct_line(const std::string& output);

// True while a job in `state` may still run (pending, running, completing, requeued, ...).
bool slurm_state_active(const std::string& state);

// How a job that left the queue ended, as the run loop sees it. `by_us`: this orchestrator
// cancelled or signalled it (Ctrl-C, sweep cancel, a stop), so CANCELLED is not someone else's.
// COMPLETED / FAILED: exited with the worker's code (128 + signal when killed); TIMEOUT,
// PREEMPTED, NODE_FAIL, BOOT_FAIL, DEADLINE: interrupted (resumable); OUT_OF_MEMORY: out of
// memory; CANCELLED not by us: cancelled.
PollResult slurm_final_poll(const std::string& job_id, const SlurmJobInfo& info, bool by_us);

}  // namespace sweep
