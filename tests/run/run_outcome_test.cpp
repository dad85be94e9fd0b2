// What `sweep run` tells a script and a user when jobs fail: the exit code, `--dry-run`'s input
// checks, and each failed job's first error line in `sweep status` and `sweep jobs`.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "db/store.h"
#include "orchestrator/cli/exit_codes.h"
#include "run_test_util.h"

namespace sweep {
namespace {

using testing::SweepWorld;

TEST(SweepRunOutcome, AFailedJobMakesRunExitWithTheJobsFailedCode) {
  SweepWorld w("outcome");
  w.write_plan({{"1", {{"mode", "fail"}}}});
  const std::string spec = w.write_spec("outcome", 2, 4, 0);
  auto r = w.sweep({"run", spec});
  EXPECT_EQ(r.code, kSweepExitJobsFailed) << r.err;
  EXPECT_NE(r.err.find("done: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 job(s) ended failed, diverged or infeasible (exit code 3)"),
            std::string::npos)
      << r.err;
  // Nothing left to run, the failed job still there: the same answer.
  EXPECT_EQ(w.sweep({"run", spec}).code, kSweepExitJobsFailed);
}

TEST(SweepRunOutcome, StatusAndJobsShowEachFailedJobsFirstErrorLine) {
  SweepWorld w("why");
  w.write_plan({{"1", {{"mode", "fail"}, {"fail_at_step", 2}}}});
  ASSERT_EQ(w.sweep({"run", w.write_spec("why", 2, 4, 0)}).code, kSweepExitJobsFailed);
  auto store = w.store();
  auto jobs = *store->list_jobs(store->resolve_sweep("why")->id, JobState::kFailed);
  ASSERT_EQ(jobs.size(), 1u);
  const std::string hash = jobs[0].hash;
  const std::string line = "train: planned failure at step 2";

  auto status = w.sweep({"status", "why"});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_NE(status.out.find("failed (first error line):\n    job " + hash + " failed: " + line),
            std::string::npos)
      << status.out;
  auto status_json = w.sweep({"status", "why", "--format", "json"});
  auto s = nlohmann::json::parse(status_json.out)[0];
  EXPECT_EQ(s["failed_total"], 1);
  EXPECT_EQ(s["failed"][0]["job"], hash);
  EXPECT_EQ(s["failed"][0]["error"], line);

  auto table = w.sweep({"jobs", "why"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("error"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(line), std::string::npos) << table.out;
  auto rows = nlohmann::json::parse(w.sweep({"jobs", "why", "--format", "json"}).out);
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    if (row["hash"] == hash) {
      EXPECT_EQ(row["error"], line);
    } else {
      EXPECT_TRUE(row["error"].is_null()) << row.dump();
    }
  }
  auto csv = w.sweep({"jobs", "why", "--format", "csv"});
  EXPECT_NE(csv.out.find(",error\n"), std::string::npos) << csv.out;
}

TEST(SweepRunOutcome, DryRunChecksThatTheBaseModelAndTheDataExist) {
  SweepWorld w("dry");
  const std::string spec = w.write_spec("dry", 1, 2, 0);
  auto ok = w.sweep({"run", spec, "--dry-run"});
  EXPECT_EQ(ok.code, 0) << ok.err;

  std::filesystem::rename(w.root() + "/images", w.root() + "/images-moved");
  auto r = w.sweep({"run", spec, "--dry-run"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("data.image_folder: " + w.root() + "/images does not exist"),
            std::string::npos)
      << r.err;
  std::filesystem::rename(w.root() + "/images-moved", w.root() + "/images");

  std::filesystem::rename(w.root() + "/train.json", w.root() + "/train-moved.json");
  r = w.sweep({"run", spec, "--dry-run"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("data.train: " + w.root() + "/train.json does not exist"), std::string::npos)
      << r.err;

  std::filesystem::remove_all(w.root() + "/model");
  r = w.sweep({"run", spec, "--dry-run"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("base_model: " + w.root() + "/model does not exist"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace sweep
