// Picking up after an orchestrator that died: workers still alive are re-attached and watched to
// the end, dead ones are recorded from their events (lost and re-queued without using a retry
// when there is no final event), and an unrecorded worker of a pending job is stopped first.
#include "run_loop_fixture.h"

namespace sweep::testing {
namespace {

using RunLoopRecovery = RunLoopTest;

constexpr int64_t kDeadPid = 999999;  // no fake process has it

TEST_F(RunLoopRecovery, LiveWorkersAreReattachedAndDeadOnesRecordedOrRequeued) {
  add_jobs(4);
  // Seed 0: its worker outlived the orchestrator and is 2 s into a 5-step run.
  write_job_file(0);
  int64_t survivor = executor_.adopt(job_json(0), WorkerScript::succeeding(5), clock_.now() - 2);
  record_crashed_attempt(0, survivor);
  // Seed 1: its worker died mid-run without a final event.
  record_crashed_attempt(1, kDeadPid);
  {
    EventWriter events(sweep_dir() + "/job1/events.jsonl", 1);
    events.emit(ProgressEvent{1, {{"train_loss", 0.5}}});
  }
  // Seed 2: its worker finished while nobody watched.
  record_crashed_attempt(2, kDeadPid);
  {
    EventWriter events(sweep_dir() + "/job2/events.jsonl", 1);
    events.emit(ProgressEvent{1, {{"train_loss", 0.5}}});
    events.emit(FinishedEvent{1, {{"val_loss", 0.9}}, std::nullopt, std::nullopt});
  }
  // Seed 3 never started.

  auto summary = run(config());  // retries: 0, yet the lost job runs again
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(summary->reattached, 1);
  EXPECT_EQ(summary->counts[JobState::kSucceeded], 4);

  EXPECT_TRUE(observer_.saw("re-attached job job0 (pid " + std::to_string(survivor) + ")"));
  EXPECT_TRUE(launches_of(0).empty());
  EXPECT_EQ(job(0).attempt, 1);
  EXPECT_EQ(store_->metric_curve(job_id(0), "train_loss")->size(), 5u);

  auto lost = attempts(1);
  ASSERT_EQ(lost.size(), 2u);
  EXPECT_EQ(lost[0].state, "lost");
  EXPECT_EQ(lost[0].error,
            "worker process " + std::to_string(kDeadPid) + " vanished without a final event");
  ASSERT_EQ(launches_of(1).size(), 1u);
  EXPECT_EQ(launches_of(1)[0].job.attempt, 2);

  EXPECT_TRUE(launches_of(2).empty());
  EXPECT_EQ(job(2).attempt, 1);
  EXPECT_EQ(launches_of(3).size(), 1u);
}

TEST_F(RunLoopRecovery, AProcessThatReusedTheRecordedPidIsLeftAlone) {
  add_jobs(1);
  // The recorded pid now belongs to a process that runs something else.
  std::string elsewhere = root_ + "/elsewhere/job.json";
  write_job_file(0, elsewhere);
  int64_t stranger = executor_.adopt(elsewhere, WorkerScript::training(100), clock_.now());
  record_crashed_attempt(0, stranger);
  auto summary = run(config());
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(summary->reattached, 0);
  EXPECT_TRUE(executor_.signals_to(stranger).empty());
  EXPECT_TRUE(executor_.alive(stranger));
  EXPECT_EQ(attempts(0).front().state, "lost");
  EXPECT_EQ(job(0).state, JobState::kSucceeded);
  EXPECT_EQ(job(0).attempt, 2);
}

TEST_F(RunLoopRecovery, AnUnrecordedWorkerOfAPendingJobIsKilledBeforeTheJobStarts) {
  add_jobs(1);
  // The orchestrator died between starting the worker and recording it: the job is pending.
  write_job_file(0);
  int64_t orphan = executor_.adopt(job_json(0), WorkerScript::training(100), clock_.now());
  ASSERT_TRUE(run(config()).ok());
  auto signals = executor_.signals_to(orphan);
  ASSERT_EQ(signals.size(), 1u);
  EXPECT_TRUE(signals[0].kill);
  EXPECT_FALSE(executor_.alive(orphan));
  EXPECT_TRUE(observer_.saw("stopping unrecorded worker " + std::to_string(orphan)));
  ASSERT_EQ(launches_of(0).size(), 1u);
  EXPECT_GE(launches_of(0)[0].at, signals[0].at);
  EXPECT_EQ(job(0).state, JobState::kSucceeded);
  EXPECT_EQ(job(0).attempt, 1);
}

}  // namespace
}  // namespace sweep::testing
