// `sweep run` end to end against the fake worker (fake_worker.cpp): every test writes a sweep
// file whose grid varies `seed`, and a plan file that tells the fake worker, per seed, to succeed,
// fail, crash, hang or produce a NaN loss. Only what needs real processes, signals and files is
// here (Ctrl-C, kill -9 and recovery, the run lock, resuming from a checkpoint, the commands);
// the run loop's rules are unit-tested with a fake executor and clock (run_loop_*_test.cpp).
#include <signal.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "orchestrator/cli/exit_codes.h"
#include "orchestrator/run/local_executor.h"
#include "run_test_util.h"

namespace sweep {
namespace {

using testing::SweepWorld;
using testing::wait_until;

int64_t sweep_id(Store& store, const std::string& name) { return (*store.find_sweep(name))->id; }

std::map<JobState, int> counts(SweepWorld& w, const std::string& name) {
  auto store = w.store();
  return *store->count_by_state(sweep_id(*store, name));
}

TEST(SweepRun, EveryJobIsRecordedOnceWithEveryMetricRowAndARerunAddsNothing) {
  SweepWorld w("many");
  std::string spec = w.write_spec("many", 6, 4, 2);
  auto r = w.sweep({"run", spec});
  ASSERT_EQ(r.code, 0) << r.err;
  auto store = w.store();
  auto jobs = *store->list_jobs(sweep_id(*store, "many"));
  ASSERT_EQ(jobs.size(), 6u);
  for (const JobRecord& j : jobs) {
    EXPECT_EQ(j.state, JobState::kSucceeded) << j.hash << ": " << j.error;
    EXPECT_EQ(j.attempt, 1);
    auto curve = *store->metric_curve(j.id, "train_loss");
    ASSERT_EQ(curve.size(), 4u) << j.hash;
    EXPECT_EQ(curve.front().first, 1);
    EXPECT_EQ(store->evals(j.id)->size(), 2u);
  }
  // Running the same file again finds nothing to do and adds no job.
  r = w.sweep({"run", spec});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(store->list_jobs(sweep_id(*store, "many"))->size(), 6u);
}

TEST(SweepRun, FailuresAreRetriedAndResumeFromTheLatestCheckpoint) {
  SweepWorld w("retry");
  w.write_plan({{"0", {{"mode", "fail"}, {"fail_attempts", 1}, {"fail_at_step", 5}}},
                {"1", {{"mode", "crash"}, {"fail_at_step", 2}}}});
  std::string spec = w.write_spec("retry", 2, 6, 2, "retries: 1\n");
  auto r = w.sweep({"run", spec});
  ASSERT_EQ(r.code, kSweepExitJobsFailed) << r.err;  // seed 1 fails on both attempts
  auto store = w.store();
  auto jobs = *store->list_jobs(sweep_id(*store, "retry"));
  ASSERT_EQ(jobs.size(), 2u);
  std::map<int, JobRecord> by_seed;
  for (const auto& j : jobs) by_seed[nlohmann::json::parse(j.params_json)["seed"].get<int>()] = j;

  const JobRecord& failed_once = by_seed[0];
  EXPECT_EQ(failed_once.state, JobState::kSucceeded);
  EXPECT_EQ(failed_once.attempt, 2);
  auto attempts = *store->attempts(failed_once.id);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].state, "failed");
  EXPECT_EQ(attempts[0].error, "train: planned failure at step 5");
  auto info = nlohmann::json::parse(failed_once.info_json);
  EXPECT_EQ(info["started"]["resumed_from_step"], 4);  // checkpoints at 2 and 4
  auto curve = *store->metric_curve(failed_once.id, "train_loss");
  ASSERT_EQ(curve.size(), 6u);  // steps 1..6, step 5 once although two attempts wrote it
  EXPECT_EQ(curve.back().first, 6);

  const JobRecord& crashed = by_seed[1];
  EXPECT_EQ(crashed.state, JobState::kFailed);
  EXPECT_EQ(crashed.attempt, 2);  // retries: 1
  EXPECT_NE(crashed.error.find("exited with code 7"), std::string::npos) << crashed.error;
  EXPECT_NE(crashed.error.find("planned crash at step 2"), std::string::npos) << crashed.error;

  // `sweep retry` re-queues the failed job with a fresh budget; it fails twice more.
  r = w.sweep({"retry", "retry"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("re-queued 1 job(s)"), std::string::npos) << r.err;
  r = w.sweep({"run", spec});
  ASSERT_EQ(r.code, kSweepExitJobsFailed) << r.err;
  EXPECT_EQ(store->get_job(crashed.id)->attempt, 4);
}

TEST(SweepRun, KillNineMidSweepThenRerunLosesNothingAndDuplicatesNothing) {
  SweepWorld w("crash");
  w.write_plan({{"default", {{"step_sleep_ms", 40}}}});
  std::string spec = w.write_spec("crash", 12, 10, 5);
  auto orchestrator = w.sweep_async({"run", spec});
  ASSERT_TRUE(wait_until([&] { return counts(w, "crash")[JobState::kSucceeded] >= 3; }, 60));
  ::kill(orchestrator.id(), SIGKILL);
  orchestrator.wait();
  // One worker dies with it (as on a machine reboot): its job must come back as lost.
  auto store = w.store();
  // (A job still recorded as running may have finished after the orchestrator died: pick a live
  // one.) If the kill landed while the only other slot was being refilled, there is none: the lost
  // path is then not exercised by this run, the rest still is.
  std::vector<JobRecord> running;
  auto listed = *store->list_jobs(sweep_id(*store, "crash"), JobState::kRunning);
  for (const JobRecord& j : listed) {
    // Early in its run (at most 7 of 10 progress events written), so it cannot finish first.
    std::string events = testing::read_file(j.run_dir + "/events.jsonl");
    size_t progress = 0;
    for (size_t at = events.find("\"progress\""); at != std::string::npos;
         at = events.find("\"progress\"", at + 1)) {
      ++progress;
    }
    if (process_alive(j.pid) && progress <= 7) running.push_back(j);
  }
  if (!running.empty()) ::kill(static_cast<pid_t>(running[0].pid), SIGKILL);
  auto r = w.sweep({"run", spec});
  ASSERT_EQ(r.code, 0) << r.err;
  if (!running.empty()) {
    EXPECT_NE(r.err.find("lost"), std::string::npos) << r.err;
  }
  auto jobs = *store->list_jobs(sweep_id(*store, "crash"));
  ASSERT_EQ(jobs.size(), 12u);
  for (const JobRecord& j : jobs) {
    EXPECT_EQ(j.state, JobState::kSucceeded) << j.hash << ": " << j.error;
    auto curve = *store->metric_curve(j.id, "train_loss");
    std::string history;
    auto attempts = *store->attempts(j.id);
    for (const auto& a : attempts) history += " " + a.state + "(" + a.error + ")";
    EXPECT_EQ(curve.size(), 10u) << j.hash << " attempts:" << history << " info " << j.info_json;
    EXPECT_EQ(store->evals(j.id)->size(), 2u) << j.hash;
  }
  if (running.empty()) return;
  auto lost = *store->attempts(running[0].id);
  ASSERT_EQ(lost.size(), 2u);
  EXPECT_EQ(lost[0].state, "lost");
}

TEST(SweepRun, ASecondRunOfTheSameSweepIsRefusedAndCancelStopsTheFirst) {
  SweepWorld w("twice");
  // Slow enough steps that no job can finish before the cancel lands, even when every `sweep`
  // command is slow (the sanitizer build on a loaded machine).
  w.write_plan({{"default", {{"step_sleep_ms", 400}}}});
  std::string spec = w.write_spec("twice", 6, 50, 0);
  auto first = w.sweep_async({"run", spec});
  ASSERT_TRUE(wait_until([&] { return counts(w, "twice")[JobState::kRunning] >= 1; }, 30));
  auto second = w.sweep({"run", spec});
  EXPECT_EQ(second.code, 1);
  EXPECT_NE(second.err.find("already being run by process " + std::to_string(first.id())),
            std::string::npos)
      << second.err;
  auto cancel = w.sweep({"cancel", "twice"});
  EXPECT_EQ(cancel.code, 0) << cancel.err;
  first.wait();
  auto c = counts(w, "twice");
  EXPECT_EQ(c[JobState::kCancelled], 6);
  EXPECT_EQ(c[JobState::kRunning], 0);
}

TEST(SweepRun, TheLockIsTheDatabasesSoAnotherRunsDirectoryIsRefusedToo) {
  SweepWorld w("dblock");
  w.write_plan({{"default", {{"step_sleep_ms", 400}}}});  // as in the test above
  std::string spec = w.write_spec("dblock", 4, 50, 0);
  auto first = w.sweep_async({"run", spec});
  ASSERT_TRUE(wait_until([&] { return counts(w, "dblock")[JobState::kRunning] >= 1; }, 30));
  // Same database, another runs directory: the second orchestrator would re-attach the first
  // one's workers and ingest into the same rows.
  auto second = w.sweep({"--runs", w.root() + "/other-runs", "run", spec});
  EXPECT_EQ(second.code, 1) << second.err;
  EXPECT_NE(second.err.find("already being run by process " + std::to_string(first.id())),
            std::string::npos)
      << second.err;
  EXPECT_NE(second.err.find(w.db()), std::string::npos) << second.err;
  EXPECT_FALSE(std::filesystem::exists(w.root() + "/other-runs/dblock")) << second.err;
  // status and cancel find the orchestrator through the database, whatever their runs directory.
  auto status = w.sweep({"--runs", w.root() + "/other-runs", "status", "dblock"});
  EXPECT_NE(status.out.find(std::to_string(first.id())), std::string::npos) << status.out;
  auto cancel = w.sweep({"--runs", w.root() + "/other-runs", "cancel", "dblock"});
  EXPECT_EQ(cancel.code, 0) << cancel.err;
  first.wait();
  auto c = counts(w, "dblock");
  EXPECT_EQ(c[JobState::kRunning], 0);
  EXPECT_EQ(c[JobState::kCancelled], 4);
}

TEST(SweepRun, CtrlCStopsWorkersWhichResumeOnTheNextRun) {
  SweepWorld w("ctrlc");
  // 8 s per job: still running when `sweep status` and the SIGINT come, even under a sanitizer.
  w.write_plan({{"default", {{"step_sleep_ms", 400}}}});
  std::string spec = w.write_spec("ctrlc", 4, 20, 0);
  auto run = w.sweep_async({"run", spec});
  ASSERT_TRUE(wait_until(
      [&] {
        auto store = w.store();
        auto running = *store->list_jobs(sweep_id(*store, "ctrlc"), JobState::kRunning);
        return running.size() == 2 &&
               *store->latest_metrics(running[0].id) != std::map<std::string, double>{};
      },
      30));
  auto status = w.sweep({"status", "ctrlc"});
  EXPECT_EQ(status.code, 0) << status.err;
  EXPECT_NE(
      status.out.find("ctrlc: pending 2, running 2 (running: process " + std::to_string(run.id())),
      std::string::npos)
      << status.out;
  ::kill(run.id(), SIGINT);
  run.wait();
  EXPECT_EQ(run.exit_code(), 130);
  auto c = counts(w, "ctrlc");
  EXPECT_EQ(c[JobState::kRunning], 0);
  EXPECT_EQ(c[JobState::kPending], 4);
  auto r = w.sweep({"run", spec});
  ASSERT_EQ(r.code, 0) << r.err;
  auto store = w.store();
  int resumed = 0;
  auto jobs = *store->list_jobs(sweep_id(*store, "ctrlc"));
  for (const JobRecord& j : jobs) {
    EXPECT_EQ(j.state, JobState::kSucceeded) << j.error << " info " << j.info_json;
    EXPECT_EQ(store->metric_curve(j.id, "train_loss")->size(), 20u) << j.hash;
    auto info = nlohmann::json::parse(j.info_json);
    if (info["started"].value("resumed_from_step", 0) > 0) ++resumed;
  }
  EXPECT_EQ(resumed, 2);
}

TEST(SweepRun, LeaderboardRanksByMinOrMaxAndBestPrintsAnExistingDirectory) {
  SweepWorld w("board");
  // Final val_loss per seed: seed 1 best (lowest), then 2, then 0; seed 3 fails.
  w.write_plan({{"0", {{"val_loss", 3.0}}},
                {"1", {{"val_loss", 1.0}}},
                {"2", {{"val_loss", 2.0}}},
                {"3", {{"mode", "fail"}}}});
  std::string spec = w.write_spec("board", 4, 4, 2);
  ASSERT_EQ(w.sweep({"run", spec}).code, kSweepExitJobsFailed);
  auto lb = w.sweep({"leaderboard", "board", "--format", "json"});
  ASSERT_EQ(lb.code, 0) << lb.err;
  auto rows = nlohmann::json::parse(lb.out);
  ASSERT_EQ(rows.size(), 3u);  // the failed job is not ranked
  EXPECT_DOUBLE_EQ(rows[0]["val_loss"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(rows[1]["val_loss"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(rows[2]["val_loss"].get<double>(), 3.0);
  EXPECT_EQ(rows[0]["step"], 4);
  // val_token_acc = 1 / (1 + val_loss): maximised, so the same order.
  lb = w.sweep(
      {"leaderboard", "board", "--metric", "val_token_acc", "--format", "json", "--top", "2"});
  rows = nlohmann::json::parse(lb.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(rows[0]["val_token_acc"].get<double>(), 0.5);
  auto table = w.sweep({"leaderboard", "board"});
  EXPECT_NE(table.out.find("not ranked: 1 failed/lost, 0 diverged"), std::string::npos)
      << table.out;

  auto best = w.sweep({"best", "board"});
  ASSERT_EQ(best.code, 0) << best.err;
  std::string dir = best.out.substr(0, best.out.find('\n'));
  EXPECT_EQ(dir, rows[0]["checkpoint"].get<std::string>());
  EXPECT_TRUE(std::filesystem::is_directory(dir)) << dir;
  EXPECT_EQ(best.out, dir + "\n");  // nothing else
}

TEST(SweepRun, BestExitsOneWhenNoJobFinished) {
  SweepWorld w("nobest");
  w.write_plan({{"default", {{"mode", "fail"}}}});
  ASSERT_EQ(w.sweep({"run", w.write_spec("nobest", 1, 2, 0)}).code, kSweepExitJobsFailed);
  auto best = w.sweep({"best", "nobest"});
  EXPECT_EQ(best.code, 1);
  EXPECT_EQ(best.out, "");
  EXPECT_NE(best.err.find("no job of sweep 'nobest' has finished"), std::string::npos) << best.err;
}

TEST(SweepRun, CommandsWithoutASweepNameNeedASingleSweepInTheDatabase) {
  SweepWorld w("names");
  ASSERT_EQ(w.sweep({"run", w.write_spec("first", 1, 2, 0)}).code, 0);
  auto only = w.sweep({"leaderboard", "--format", "json"});
  EXPECT_EQ(only.code, 0) << only.err;
  ASSERT_EQ(w.sweep({"run", w.write_spec("second", 1, 2, 0)}).code, 0);
  for (const char* command : {"leaderboard", "best", "jobs"}) {
    auto r = w.sweep({command});
    EXPECT_EQ(r.code, 1) << command;
    EXPECT_NE(r.err.find("holds several sweeps: first, second"), std::string::npos) << r.err;
  }
  auto named = w.sweep({"best", "first"});
  EXPECT_EQ(named.code, 0) << named.err;
  auto unknown = w.sweep({"status", "third"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("sweep 'third' is not in database"), std::string::npos) << unknown.err;
}

TEST(SweepRun, AMissingWorkerProgramIsAnErrorBeforeAnythingStarts) {
  SweepWorld w("noworker");
  std::string spec = w.write_spec("noworker", 1, 2, 0);
  std::string text = testing::read_file(spec);
  text.replace(text.find(FAKE_WORKER_EXE), std::string(FAKE_WORKER_EXE).size(),
               "/nonexistent/trainer");
  std::ofstream(spec) << text;
  auto r = w.sweep({"run", spec});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("worker program /nonexistent/trainer is missing"), std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(w.db()));
}

TEST(SweepRun, AnUnreadableBaseModelIsAnErrorBeforeAnythingStarts) {
  SweepWorld w("nomodel");
  std::filesystem::remove(w.root() + "/model/config.json");
  auto r = w.sweep({"run", w.write_spec("nomodel", 1, 2, 0)});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("base_model: cannot read " + w.root() + "/model/config.json"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace sweep
