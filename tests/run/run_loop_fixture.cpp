#include "run_loop_fixture.h"

#include <unistd.h>

#include <filesystem>

#include "orchestrator/run/run_lock.h"

namespace fs = std::filesystem;

namespace sweep::testing {

bool RecordingObserver::saw(const std::string& text) const {
  for (const std::string& line : lines) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

RunLoopTest::RunLoopTest()
    : script_([](const JobFile&) { return WorkerScript::succeeding(3); }),
      executor_(clock_, [this](const JobFile& job) { return script_(job); }) {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  root_ = (fs::temp_directory_path() / ("sweep-loop-" + std::to_string(::getpid()) + "-" +
                                        test->test_suite_name() + "-" + test->name()))
              .string();
  fs::remove_all(root_);
  fs::create_directories(sweep_dir());
  store_ = std::move(Store::open(":memory:").value());
  sweep_id_ = *store_->upsert_sweep("s", root_ + "/s.yaml", "{}", "val_loss", "min");
}

RunLoopTest::~RunLoopTest() {
  std::error_code ec;
  fs::remove_all(root_, ec);
}

void RunLoopTest::add_jobs(int n) {
  std::vector<NewJob> jobs;
  for (int seed = 0; seed < n; ++seed) {
    jobs.push_back(
        NewJob{"job" + std::to_string(seed), seed, nlohmann::json{{"seed", seed}}.dump(), 2.0});
  }
  ASSERT_TRUE(store_->upsert_jobs(sweep_id_, jobs).ok());
  std::vector<JobRecord> recorded = *store_->list_jobs(sweep_id_);
  for (const JobRecord& j : recorded) job_ids_.push_back(j.id);
}

RunConfig RunLoopTest::config() const {
  RunConfig c;
  c.sweep_id = sweep_id_;
  c.sweep_name = "s";
  c.sweep_dir = sweep_dir();
  c.worker_argv = {"fake-worker"};
  c.resources.slots = 2;
  c.resources.threads_per_job = 3;
  c.poll_interval_s = 1.0;
  c.term_grace_s = 5;
  return c;
}

Result<RunSummary> RunLoopTest::run(const RunConfig& config) {
  RunLoop loop(*store_, executor_, config, &observer_, clock_);
  return loop.run();
}

JobRecord RunLoopTest::job(int seed) { return *store_->get_job(job_id(seed)); }

std::vector<AttemptRecord> RunLoopTest::attempts(int seed) {
  return *store_->attempts(job_id(seed));
}

std::map<JobState, int> RunLoopTest::counts() { return *store_->count_by_state(sweep_id_); }

std::string RunLoopTest::job_json(int seed) {
  return sweep_dir() + "/" + job(seed).hash + "/job.json";
}

void RunLoopTest::write_job_file(int seed, const std::string& path) {
  JobRecord j = job(seed);
  JobFile file;
  file.sweep = "s";
  file.job_id = j.hash;
  file.attempt = 1;
  file.run_dir = sweep_dir() + "/" + j.hash;
  file.params = nlohmann::json::parse(j.params_json);
  std::string target = path.empty() ? job_json(seed) : path;
  fs::create_directories(fs::path(target).parent_path());
  file.write(target);
}

void RunLoopTest::record_crashed_attempt(int seed, int64_t pid) {
  write_job_file(seed);
  ASSERT_TRUE(
      store_
          ->start_attempt(job_id(seed), pid, host_name(), "cpu", sweep_dir() + "/" + job(seed).hash)
          .ok());
}

std::vector<FakeExecutor::Launch> RunLoopTest::launches_of(int seed) const {
  std::vector<FakeExecutor::Launch> out;
  for (const auto& l : executor_.launches()) {
    for (const JobFile& j : l.jobs) {
      if (seed_of(j) == seed) {
        out.push_back(l);
        break;
      }
    }
  }
  return out;
}

int RunLoopTest::seed_of(const JobFile& job) { return job.params.value("seed", -1); }

}  // namespace sweep::testing
