// The Slurm executor's pure parts (orchestrator/run/slurm_commands.h): sbatch argv and batch
// script from the resources, parsing of sbatch / squeue / scontrol / sacct output, and the
// mapping of Slurm's final states onto the run loop's. No cluster needed.
#include <gtest/gtest.h>

#include "orchestrator/run/slurm_commands.h"

namespace sweep {
namespace {

LaunchRequest request() {
  LaunchRequest r;
  r.argv = {"/opt/sweep/bin/sweep-worker", "/runs/s/abc123/job.json"};
  r.env = {{"OMP_NUM_THREADS", "4"}};
  r.working_dir = "/runs/s/abc123";
  r.stdout_path = "/runs/s/abc123/worker-2.out";
  r.stderr_path = "/runs/s/abc123/worker-2.err";
  return r;
}

TEST(SbatchArgv, MinimalResourcesGiveOneTaskWithTheSweepsThreads) {
  auto argv = sbatch_argv(SlurmSpec{}, 4, request(), "/runs/s/abc123/worker-2.sh");
  EXPECT_EQ(argv, (std::vector<std::string>{
                      "sbatch", "--parsable", "--job-name=sweep-abc123", "--nodes=1", "--ntasks=1",
                      "--cpus-per-task=4", "--chdir=/runs/s/abc123",
                      "--output=/runs/s/abc123/worker-2.out", "--error=/runs/s/abc123/worker-2.err",
                      "/runs/s/abc123/worker-2.sh"}));
}

TEST(SbatchArgv, EveryResourceBecomesItsOwnArgument) {
  SlurmSpec s;
  s.partition = "gpu";
  s.account = "vision";
  s.qos = "high";
  s.mem = "64G";
  s.time_limit = "04:00:00";
  s.gpus_per_job = 2;
  s.cpus_per_job = 16;
  s.sbatch_args = {"--constraint=a100|h100", "--exclusive"};
  auto argv = sbatch_argv(s, 4, request(), "/x.sh");
  std::vector<std::string> expected_tail = {
      "--partition=gpu", "--account=vision",       "--qos=high",  "--mem=64G", "--time=04:00:00",
      "--gres=gpu:2",    "--constraint=a100|h100", "--exclusive", "/x.sh"};
  ASSERT_GE(argv.size(), expected_tail.size());
  EXPECT_EQ(std::vector<std::string>(argv.end() - expected_tail.size(), argv.end()), expected_tail);
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--cpus-per-task=16"), argv.end());
}

TEST(SlurmBatchScript, ExecsTheQuotedWorkerInItsRunDirectory) {
  LaunchRequest r = request();
  r.argv.push_back("/runs/it's here/job.json");
  std::string script = slurm_batch_script(r);
  EXPECT_EQ(script.rfind("#!/bin/bash\n", 0), 0u);
  EXPECT_NE(script.find("export OMP_NUM_THREADS='4'\n"), std::string::npos);
  EXPECT_NE(script.find("cd '/runs/s/abc123' || exit 1\n"), std::string::npos);
  EXPECT_NE(script.find("exec '/opt/sweep/bin/sweep-worker' '/runs/s/abc123/job.json' "
                        "'/runs/it'\\''s here/job.json'\n"),
            std::string::npos);
}

TEST(SlurmOutput, SbatchParsableId) {
  EXPECT_EQ(parse_sbatch_id("42\n"), "42");
  EXPECT_EQ(parse_sbatch_id("42;cluster-a\n"), "42");
  EXPECT_EQ(parse_sbatch_id("sbatch: warning: x\n43\n"), "43");
  EXPECT_EQ(parse_sbatch_id(""), std::nullopt);
  EXPECT_EQ(parse_sbatch_id("Submitted batch job 42"), std::nullopt);
}

TEST(SlurmOutput, SqueueRows) {
  auto rows = parse_squeue(
      "12|RUNNING|/runs/a/worker-1.sh\n13|PENDING|/runs/b/worker-1.sh\n"
      "garbage\n\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, "12");
  EXPECT_EQ(rows[0].state, "RUNNING");
  EXPECT_EQ(rows[0].command, "/runs/a/worker-1.sh");
  EXPECT_EQ(rows[1].state, "PENDING");
}

TEST(SlurmOutput, ScontrolJobStateAndExitCode) {
  auto info = parse_scontrol_job(
      "JobId=7 JobName=sweep-abc UserId=root(0) JobState=TIMEOUT Reason=TimeLimit Dependency="
      "(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:15 DerivedExitCode=0:0\n");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "TIMEOUT");
  EXPECT_EQ(info->exit_code, 0);
  EXPECT_EQ(info->signal, 15);
  auto failed = parse_scontrol_job("JobId=8 DerivedExitCode=0:0 JobState=FAILED ExitCode=3:0");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->exit_code, 3);
  EXPECT_EQ(failed->signal, 0);
  EXPECT_FALSE(parse_scontrol_job("slurm_load_jobs error: Invalid job id specified"));
}

TEST(SlurmOutput, SacctLine) {
  auto info = parse_sacct_line("9|CANCELLED by 0|0:15\n");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "CANCELLED");
  EXPECT_EQ(info->signal, 15);
  EXPECT_FALSE(parse_sacct_line(""));
}

TEST(SlurmStates, ActiveStatesKeepTheWorkerRunning) {
  for (const char* s : {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUED", "SUSPENDED"})
    EXPECT_TRUE(slurm_state_active(s)) << s;
  for (const char* s : {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY"})
    EXPECT_FALSE(slurm_state_active(s)) << s;
}

TEST(SlurmStates, CompletedAndFailedExitWithTheWorkersCode) {
  PollResult done = slurm_final_poll("5", {"COMPLETED", 0, 0}, false);
  EXPECT_EQ(done.state, ProcessState::kExited);
  EXPECT_EQ(done.exit_code, 0);
  EXPECT_EQ(done.cluster_end, ClusterEnd::kNone);
  PollResult failed = slurm_final_poll("5", {"FAILED", 3, 0}, false);
  EXPECT_EQ(failed.exit_code, 3);
  EXPECT_EQ(failed.cluster_end, ClusterEnd::kNone);
  EXPECT_EQ(slurm_final_poll("5", {"FAILED", 0, 9}, false).exit_code, 137);
}

TEST(SlurmStates, TimeLimitPreemptionAndNodeFailuresAreInterruptions) {
  for (const char* s : {"TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"}) {
    PollResult r = slurm_final_poll("6", {s, 0, 15}, false);
    EXPECT_EQ(r.cluster_end, ClusterEnd::kInterrupted) << s;
    EXPECT_EQ(r.detail, std::string("Slurm job 6 ") + s);
  }
}

TEST(SlurmStates, OutOfMemoryIsItsOwnEnd) {
  EXPECT_EQ(slurm_final_poll("6", {"OUT_OF_MEMORY", 0, 9}, false).cluster_end,
            ClusterEnd::kOutOfMemory);
}

TEST(SlurmStates, CancelledIsSomeoneElsesUnlessWeAskedForIt) {
  EXPECT_EQ(slurm_final_poll("6", {"CANCELLED", 0, 15}, false).cluster_end, ClusterEnd::kCancelled);
  PollResult ours = slurm_final_poll("6", {"CANCELLED", 0, 15}, true);
  EXPECT_EQ(ours.cluster_end, ClusterEnd::kNone);
  EXPECT_EQ(ours.exit_code, 143);
}

}  // namespace
}  // namespace sweep
