// bench_orchestrator [JOBS] [STEPS] [jobs|ingest]: (1) JOBS no-op jobs (noop_worker, STEPS progress
// events each) through the real run loop on 2 CPU slots: jobs/s from spawn to recorded state,
// beside the floor of JOBS bare process starts two at a time; (2) one events file of 200,000
// progress events ingested into SQLite: events/s. Results: bench/orchestrator/README.md.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "orchestrator/run/ingestor.h"
#include "orchestrator/run/local_executor.h"
#include "orchestrator/run/run_loop.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int bench_jobs(const std::string& root, int jobs, int steps) {
  auto store = std::move(sweep::Store::open(root + "/jobs.db").value());
  int64_t sweep_id = *store->upsert_sweep("bench", "bench.yaml", "{}", "val_loss", "min");
  std::vector<sweep::NewJob> rows;
  for (int i = 0; i < jobs; ++i) {
    rows.push_back(
        {"job" + std::to_string(i), i,
         "{\"max_steps\": " + std::to_string(steps) + ", \"seed\": " + std::to_string(i) + "}",
         2.0});
  }
  if (!store->upsert_jobs(sweep_id, rows).ok()) return 1;
  sweep::RunConfig c;
  c.sweep_id = sweep_id;
  c.sweep_name = "bench";
  c.sweep_dir = root + "/runs";
  c.worker_argv = {NOOP_WORKER_EXE};
  c.resources.slots = 2;
  sweep::LocalExecutor executor;
  sweep::RunLoop loop(*store, executor, c);
  auto t0 = Clock::now();
  auto summary = loop.run();
  double t = seconds_since(t0);
  if (!summary.ok()) {
    std::fprintf(stderr, "%s\n", summary.error().message.c_str());
    return 1;
  }
  int ok = summary->counts[sweep::JobState::kSucceeded];
  double events = static_cast<double>(jobs) * (steps + 3);
  std::printf(
      "run loop: %d no-op jobs (%d succeeded) on 2 slots in %.2f s: %.1f jobs/s, %.0f events/s\n",
      jobs, ok, t, jobs / t, events / t);
  return ok == jobs ? 0 : 1;
}

// The floor under any run loop that starts a process per job: `jobs` starts of noop_worker that
// exit at once (no job file), two at a time as on 2 slots, with posix_spawn and waitpid and nothing
// else. Its jobs/s is the most a process per job can give on this machine.
int bench_spawn_floor(int jobs) {
  char* argv[] = {const_cast<char*>(NOOP_WORKER_EXE), nullptr};
  auto t0 = Clock::now();
  int running = 0, started = 0;
  while (started < jobs || running > 0) {
    while (running < 2 && started < jobs) {
      pid_t pid = 0;
      if (::posix_spawn(&pid, NOOP_WORKER_EXE, nullptr, nullptr, argv, environ) != 0) return 1;
      ++running;
      ++started;
    }
    int status = 0;
    if (::waitpid(-1, &status, 0) > 0) --running;
  }
  double t = seconds_since(t0);
  std::printf("process floor: %d starts of noop_worker that exit at once, 2 at a time: %.1f/s\n",
              jobs, jobs / t);
  return 0;
}

int bench_ingest(const std::string& root, int events) {
  auto store = std::move(sweep::Store::open(root + "/ingest.db").value());
  int64_t sweep_id = *store->upsert_sweep("ingest", "x.yaml", "{}", "val_loss", "min");
  if (!store->upsert_jobs(sweep_id, {{"h", 0, "{}", 1.0}}).ok()) return 1;
  int64_t job = (*store->list_jobs(sweep_id))[0].id;
  std::string path = root + "/events.jsonl";
  {
    sweep::EventWriter w(path, 1);
    for (int s = 1; s <= events; ++s) {
      w.emit(sweep::ProgressEvent{
          s, {{"train_loss", 1.0 / s}, {"lr", 1e-4}, {"grad_norm", 1.0}, {"tokens_per_s", 900.0}}});
    }
  }
  sweep::Ingestor in(*store, job, 1, path, 0, 0);
  auto t0 = Clock::now();
  auto n = in.poll();
  double t = seconds_since(t0);
  if (!n.ok()) return 1;
  std::printf(
      "ingest: %d progress events (5 metrics each) in %.2f s: %.0f events/s, %.0f metric rows/s\n",
      *n, t, *n / t, *n * 5 / t);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = argc > 1 ? std::atoi(argv[1]) : 1000;
  int steps = argc > 2 ? std::atoi(argv[2]) : 10;
  // PART: "jobs" or "ingest" runs only that part (e.g. under `perf record`); both by default.
  const std::string part = argc > 3 ? argv[3] : "";
  std::string root =
      (fs::temp_directory_path() / ("bench-orchestrator-" + std::to_string(::getpid()))).string();
  fs::create_directories(root);
  int rc = part == "ingest" ? 0 : bench_jobs(root, jobs, steps);
  if (rc == 0 && part.empty()) rc = bench_spawn_floor(jobs);
  if (rc == 0 && part != "jobs") rc = bench_ingest(root, 200000);
  fs::remove_all(root);
  return rc;
}
