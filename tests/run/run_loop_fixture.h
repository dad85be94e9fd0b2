// The world of a run-loop unit test: an in-memory store holding one sweep with a job per seed, a
// FakeClock and a FakeExecutor whose workers follow `script_`, and a run directory under the
// system temp dir. Nothing here starts a process or sleeps.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "db/store.h"
#include "fake_executor.h"
#include "orchestrator/run/clock.h"
#include "orchestrator/run/run_loop.h"

namespace sweep::testing {

// Keeps the loop's human lines.
class RecordingObserver : public RunObserver {
 public:
  void on_event(const std::string& line) override { lines.push_back(line); }
  void on_tick(const std::vector<RunningJob>&, const std::map<JobState, int>&) override {}
  // True when some line contains `text`.
  bool saw(const std::string& text) const;

  std::vector<std::string> lines;
};

class RunLoopTest : public ::testing::Test {
 protected:
  RunLoopTest();
  ~RunLoopTest() override;

  // Records the sweep with jobs for seeds 0..n-1 (params {"seed": i}), in that grid order.
  void add_jobs(int n);
  // 2 CPU slots, no retries, no time limit, a 1 s tick and a 5 s SIGTERM grace.
  RunConfig config() const;
  // Runs a loop over the sweep until it returns.
  Result<RunSummary> run(const RunConfig& config);

  int64_t job_id(int seed) const { return job_ids_.at(static_cast<size_t>(seed)); }
  JobRecord job(int seed);
  std::vector<AttemptRecord> attempts(int seed);
  std::map<JobState, int> counts();
  std::string sweep_dir() const { return root_ + "/runs/s"; }
  // The job.json path the loop uses for a job.
  std::string job_json(int seed);
  // Writes the job.json of the job's attempt 1 at `path` (default: job_json(seed)).
  void write_job_file(int seed, const std::string& path = "");
  // What a `sweep run` that died left for this job: job.json of attempt 1 and the attempt
  // recorded as running under `pid` on this host.
  void record_crashed_attempt(int seed, int64_t pid);
  // Launches of one job (alone or in a pack), in order.
  std::vector<FakeExecutor::Launch> launches_of(int seed) const;

  static int seed_of(const JobFile& job);

  std::string root_;
  std::unique_ptr<Store> store_;
  FakeClock clock_;
  // What every launched worker does; by default it trains 3 steps and finishes.
  std::function<WorkerScript(const JobFile& job)> script_;
  FakeExecutor executor_;
  RecordingObserver observer_;
  int64_t sweep_id_ = 0;
  std::vector<int64_t> job_ids_;  // by seed
};

}  // namespace sweep::testing
