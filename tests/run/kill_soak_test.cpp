// Kill soak: `sweep run` of a few hundred fake-worker jobs, killed with SIGKILL at random moments
// (the orchestrator, and random workers beside it) for several rounds, then run to the end. The
// database must then hold every job once in a final state, every metric row once with no gap,
// consistent attempts, and no worker may be left alive.
//
// Seeded: the seed is printed; SWEEP_SOAK_SEED replays a run. Size knobs for longer local runs:
// SWEEP_SOAK_JOBS (default 200), SWEEP_SOAK_ROUNDS (default 8). CTest label `soak`.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "orchestrator/run/local_executor.h"
#include "run_test_util.h"

namespace sweep {
namespace {

namespace fs = std::filesystem;
using testing::SweepWorld;
using testing::wait_until;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// The command line of process `pid` (NULs as spaces), empty when it is gone or a zombie.
std::string live_cmdline(long pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return "";
  size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] == 'Z') return "";
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string cmd = ss.str();
  for (char& c : cmd)
    if (c == '\0') c = ' ';
  return cmd;
}

// Fake workers of this world still alive: their command line names a job file under `runs`.
std::vector<long> live_workers(const std::string& runs) {
  std::vector<long> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = live_cmdline(std::atol(name.c_str()));
    if (cmd.find(FAKE_WORKER_EXE) != std::string::npos && cmd.find(runs) != std::string::npos)
      out.push_back(std::atol(name.c_str()));
  }
  return out;
}

int64_t sweep_id(Store& store, const std::string& name) { return (*store.find_sweep(name))->id; }

TEST(KillSoak, KilledOrchestratorsAndWorkersLoseNothingAndDuplicateNothing) {
  const int jobs = env_int("SWEEP_SOAK_JOBS", 200);
  const int rounds = env_int("SWEEP_SOAK_ROUNDS", 8);
  const unsigned seed = static_cast<unsigned>(
      env_int("SWEEP_SOAK_SEED", static_cast<int>(std::random_device{}() & 0x7fffffff)));
  std::cout << "kill soak: seed " << seed << " (SWEEP_SOAK_SEED=" << seed << " replays it), "
            << jobs << " jobs, " << rounds << " rounds" << std::endl;
  RecordProperty("seed", static_cast<int>(seed));
  std::mt19937 rng(seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  constexpr int kMaxSteps = 8, kEvalEvery = 4;
  SweepWorld w("soak");
  w.write_plan({{"default", {{"step_sleep_ms", 15}}}});
  // Enough retries that no job runs out of attempts however often it is killed.
  std::string spec = w.write_spec("soak", jobs, kMaxSteps, kEvalEvery, "retries: 1000\n", 4);

  int killed_workers = 0;
  for (int round = 1; round <= rounds; ++round) {
    auto orchestrator = w.sweep_async({"run", spec});
    // Its checks of the data and the model come first: let it start workers (a loaded machine
    // may take seconds), then kill at a random moment of the run.
    wait_until([&] { return !live_workers(w.runs()).empty() || !orchestrator.running(); }, 60);
    const int run_ms = uniform(0, 2500);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(run_ms);
    // Kill a random worker now and then while the orchestrator runs.
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(uniform(20, 400)));
      if (uniform(0, 2) != 0) continue;
      std::vector<long> workers = live_workers(w.runs());
      if (workers.empty()) continue;
      ::kill(static_cast<pid_t>(workers[uniform(0, static_cast<int>(workers.size()) - 1)]),
             SIGKILL);
      ++killed_workers;
    }
    ::kill(orchestrator.id(), SIGKILL);
    orchestrator.wait();
    // Sometimes a worker dies with it (as on a reboot), sometimes the orphans run on.
    if (uniform(0, 1) == 0) {
      for (long pid : live_workers(w.runs())) {
        ::kill(static_cast<pid_t>(pid), SIGKILL);
        ++killed_workers;
      }
    }
  }
  std::cout << "kill soak: " << rounds << " orchestrator(s) and " << killed_workers
            << " worker(s) killed" << std::endl;

  // Run to the end: a later run finds nothing left to do.
  testing::CmdResult r;
  for (int run = 0; run < 3; ++run) {
    r = w.sweep({"run", spec});
    if (r.code == 0) break;
  }
  ASSERT_EQ(r.code, 0) << r.err;

  auto store = w.store();
  const int64_t sid = sweep_id(*store, "soak");
  auto listed = *store->list_jobs(sid);
  ASSERT_EQ(listed.size(), static_cast<size_t>(jobs));
  std::set<std::string> hashes;
  std::set<int> seeds;
  for (const JobRecord& j : listed) {
    EXPECT_TRUE(hashes.insert(j.hash).second) << "job recorded twice: " << j.hash;
    seeds.insert(nlohmann::json::parse(j.params_json)["seed"].get<int>());
    EXPECT_EQ(j.state, JobState::kSucceeded) << j.hash << ": " << j.error;

    // Metric rows: every step 1..max_steps once, for every metric the worker reports.
    for (const char* metric : {"train_loss", "lr", "grad_norm"}) {
      auto curve = *store->metric_curve(j.id, metric);
      std::vector<int64_t> steps;
      for (const auto& [step, value] : curve) steps.push_back(step);
      std::vector<int64_t> want;
      for (int64_t s = 1; s <= kMaxSteps; ++s) want.push_back(s);
      EXPECT_EQ(steps, want) << j.hash << " " << metric;
    }
    std::vector<int64_t> eval_steps;
    auto evals = *store->evals(j.id);
    for (const EvalRow& e : evals) eval_steps.push_back(e.step);
    EXPECT_EQ(eval_steps, (std::vector<int64_t>{kEvalEvery, kMaxSteps})) << j.hash;

    // Attempts: numbered 1..n without a gap, all ended (the sweep is done) with an end state,
    // the last one succeeded, and the job's attempt count is n.
    auto attempts = *store->attempts(j.id);
    ASSERT_FALSE(attempts.empty()) << j.hash;
    EXPECT_EQ(j.attempt, static_cast<int>(attempts.size())) << j.hash;
    for (size_t i = 0; i < attempts.size(); ++i) {
      const AttemptRecord& a = attempts[i];
      EXPECT_EQ(a.attempt, static_cast<int>(i) + 1) << j.hash;
      EXPECT_NE(a.state, "running") << j.hash << " attempt " << a.attempt << " is still open";
      EXPECT_GT(a.finished_at, 0) << j.hash << " attempt " << a.attempt;
      if (i + 1 < attempts.size()) {
        EXPECT_TRUE(a.state == "lost" || a.state == "failed" || a.state == "cancelled")
            << j.hash << " attempt " << a.attempt << ": " << a.state << " " << a.error;
      }
    }
    EXPECT_EQ(attempts.back().state, "succeeded") << j.hash;
  }
  EXPECT_EQ(seeds.size(), static_cast<size_t>(jobs));

  // No worker outlives the sweep (orphans of killed orchestrators included).
  std::vector<long> left;
  wait_until(
      [&] {
        left = live_workers(w.runs());
        return left.empty();
      },
      10);
  EXPECT_TRUE(left.empty()) << left.size() << " fake worker(s) still alive, e.g. pid "
                            << (left.empty() ? 0 : left[0]);
}

}  // namespace
}  // namespace sweep
