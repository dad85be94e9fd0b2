// Packed workers end to end: the real `sweep` starts fake_worker.cpp with several job files, each
// job's outcome comes from its own events, a crashed pack is retried job by job from each job's
// checkpoint, a killed orchestrator re-attaches the pack, and `sweep jobs`, `sweep status` and
// `sweep plan` show the packs.
#include <signal.h>

#include <map>
#include <set>

#include <gtest/gtest.h>

#include "orchestrator/cli/exit_codes.h"
#include "orchestrator/run/local_executor.h"
#include "run_test_util.h"

namespace sweep {
namespace {

using testing::SweepWorld;
using testing::wait_until;

std::map<int, JobRecord> jobs_by_seed(Store& store, const std::string& name) {
  std::map<int, JobRecord> out;
  auto sweep = store.find_sweep(name);
  if (!sweep.ok() || !*sweep) return out;
  const std::vector<JobRecord> jobs = *store.list_jobs((*sweep)->id);
  for (const JobRecord& j : jobs) out[nlohmann::json::parse(j.params_json)["seed"].get<int>()] = j;
  return out;
}

TEST(SweepRunPack, CompatibleJobsTrainInOneWorkerAndEachEndsByItsOwnEvents) {
  SweepWorld w("pk");
  w.write_plan({{"1", {{"mode", "nan"}, {"fail_at_step", 3}}}});
  std::string spec = w.write_spec("pk", 4, 6, 2, "", /*slots=*/1, /*pack=*/2);
  auto plan = w.sweep({"plan", spec});
  ASSERT_EQ(plan.code, 0) << plan.err;
  EXPECT_NE(plan.out.find("packing: packs of up to 2 jobs per worker; 4 jobs in 1 compatible "
                          "group(s); at least 2 worker process(es)"),
            std::string::npos)
      << plan.out;

  auto r = w.sweep({"run", spec});
  ASSERT_EQ(r.code, kSweepExitJobsFailed) << r.err;  // seed 1 diverged
  auto store = w.store();
  auto jobs = jobs_by_seed(*store, "pk");
  ASSERT_EQ(jobs.size(), 4u);
  EXPECT_EQ(jobs[1].state, JobState::kDiverged);
  EXPECT_EQ(jobs[1].exit_code, 3);
  for (int seed : {0, 2, 3}) {
    EXPECT_EQ(jobs[seed].state, JobState::kSucceeded) << seed << ": " << jobs[seed].error;
    EXPECT_EQ(jobs[seed].exit_code, 0);
  }
  // Seeds 0 and 1 shared one process, seeds 2 and 3 another.
  auto a0 = (*store->attempts(jobs[0].id))[0];
  auto a1 = (*store->attempts(jobs[1].id))[0];
  auto a2 = (*store->attempts(jobs[2].id))[0];
  auto a3 = (*store->attempts(jobs[3].id))[0];
  EXPECT_EQ(a0.pid, a1.pid);
  EXPECT_EQ(a2.pid, a3.pid);
  EXPECT_NE(a0.pid, a2.pid);
  ASSERT_TRUE(a0.pack_id && a2.pack_id);
  EXPECT_EQ(a0.pack_id, a1.pack_id);
  EXPECT_EQ(a2.pack_id, a3.pack_id);
  EXPECT_NE(*a0.pack_id, *a2.pack_id);
  // Every job wrote its own events, checkpoints and final event in its own run directory.
  for (int seed : {0, 2, 3}) {
    EXPECT_EQ(store->evals(jobs[seed].id)->size(), 3u) << seed;
    EXPECT_NE(testing::read_file(jobs[seed].run_dir + "/events.jsonl").find("\"finished\""),
              std::string::npos);
  }

  auto listed = w.sweep({"jobs", "pk", "--format", "csv"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  std::string header = listed.out.substr(0, listed.out.find('\n'));
  EXPECT_EQ(header.rfind("id,hash,state,attempt,pack,", 0), 0u) << header;
  EXPECT_NE(listed.out.find("," + std::to_string(*a2.pack_id) + ","), std::string::npos)
      << listed.out;
}

TEST(SweepRunPack, ACrashedPackRetriesEachJobFromItsOwnCheckpoint) {
  SweepWorld w("pkcrash");
  // Seed 0's first attempt crashes the whole process at step 5 (after checkpoints at 2 and 4).
  w.write_plan({{"0", {{"mode", "crash"}, {"fail_attempts", 1}, {"fail_at_step", 5}}}});
  std::string spec = w.write_spec("pkcrash", 2, 6, 2, "retries: 1\n", /*slots=*/1, /*pack=*/2);
  auto r = w.sweep({"run", spec});
  ASSERT_EQ(r.code, 0) << r.err;
  auto store = w.store();
  auto jobs = jobs_by_seed(*store, "pkcrash");
  for (int seed : {0, 1}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const JobRecord& j = jobs[seed];
    EXPECT_EQ(j.state, JobState::kSucceeded) << j.error;
    auto attempts = *store->attempts(j.id);
    ASSERT_EQ(attempts.size(), 2u);
    EXPECT_EQ(attempts[0].state, "failed");
    EXPECT_EQ(attempts[0].exit_code, 7);
    EXPECT_EQ(attempts[1].state, "succeeded");
    // Both retried together, each resuming from its own latest checkpoint.
    EXPECT_TRUE(attempts[1].pack_id.has_value());
    auto info = nlohmann::json::parse(j.info_json);
    EXPECT_EQ(info["started"]["resumed_from_step"], 4);
    auto curve = *store->metric_curve(j.id, "train_loss");
    EXPECT_EQ(curve.size(), 6u);
  }
}

TEST(SweepRunPack, KillNineOfTheOrchestratorThenRerunReattachesThePack) {
  SweepWorld w("pkre");
  w.write_plan({{"default", {{"step_sleep_ms", 150}}}});
  std::string spec = w.write_spec("pkre", 2, 20, 5, "", /*slots=*/1, /*pack=*/2);
  auto orchestrator = w.sweep_async({"run", spec});
  auto both_started = [&] {
    auto store = w.store();
    auto jobs = jobs_by_seed(*store, "pkre");
    if (jobs.size() != 2) return false;
    for (auto& [seed, j] : jobs) {
      if (j.state != JobState::kRunning || j.info_json.find("started") == std::string::npos)
        return false;
    }
    return true;
  };
  ASSERT_TRUE(wait_until(both_started, 60));
  ::kill(orchestrator.id(), SIGKILL);
  orchestrator.wait();
  auto store = w.store();
  auto before = jobs_by_seed(*store, "pkre");
  ASSERT_EQ(before[0].pid, before[1].pid);
  ASSERT_TRUE(process_alive(before[0].pid));

  auto status = w.sweep({"status", "pkre"});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_NE(status.out.find("(pid " + std::to_string(before[0].pid) +
                            "): 2 jobs running in one "
                            "worker: " +
                            before[0].hash + " " + before[1].hash),
            std::string::npos)
      << status.out;

  auto r = w.sweep({"run", spec});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("re-attached job " + before[0].hash), std::string::npos) << r.err;
  auto after = jobs_by_seed(*store, "pkre");
  for (int seed : {0, 1}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    EXPECT_EQ(after[seed].state, JobState::kSucceeded) << after[seed].error;
    auto attempts = *store->attempts(after[seed].id);
    ASSERT_EQ(attempts.size(), 1u);  // no second launch
    EXPECT_EQ(attempts[0].pid, before[0].pid);
    EXPECT_TRUE(attempts[0].pack_id.has_value());
    EXPECT_EQ(store->metric_curve(after[seed].id, "train_loss")->size(), 20u);
  }
  EXPECT_EQ((*store->attempts(after[0].id))[0].pack_id, (*store->attempts(after[1].id))[0].pack_id);
}

}  // namespace
}  // namespace sweep
