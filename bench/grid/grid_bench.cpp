// Expanding and recording a 10,000-point grid: parse the sweep file, expand it (params resolved,
// LoRA scale and hash per job), and record the sweep and its jobs in a fresh SQLite file, then
// record them again (the `sweep run` rerun case, where every job already exists). Prints the time
// of each phase; the target for expand + record is under 1 s.
// usage: grid_bench [--repeat N] [--db-dir DIR]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "db/store.h"
#include "orchestrator/spec/sweep_spec.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// 10 ranks x 5 alpha multipliers x 10 learning rates x 4 batch sizes x 5 seeds = 10,000 points.
const char* kSpec = R"(name: bench_10k
base_model: builtin:tiny-llava
data:
  train: builtin:shapes/vqa_train.json
  val: builtin:shapes/vqa_val.json
  image_folder: builtin:shapes/images
train:
  max_steps: 60
  eval_every: 20
grid:
  lora_r: [1, 2, 4, 8, 16, 32, 48, 64, 96, 128]
  lora_alpha: {times: lora_r, values: [0.5, 1, 2, 4, 8]}
  learning_rate: [1.0e-5, 2.0e-5, 5.0e-5, 1.0e-4, 2.0e-4, 5.0e-4, 1.0e-3, 2.0e-3, 5.0e-3, 1.0e-2]
  batch_size: [4, 8, 16, 32]
  seed: [1, 2, 3, 4, 5]
)";

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Times {
  double parse = 0, expand = 0, to_rows = 0, record_new = 0, record_again = 0;
  double expand_and_record() const { return parse + expand + to_rows + record_new; }
};

[[noreturn]] void die(const sweep::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.to_string().c_str());
  std::exit(2);
}

Times run_once(const fs::path& db_path, size_t& jobs_out) {
  Times t;
  auto t0 = Clock::now();
  auto spec = sweep::parse_sweep_spec(kSpec, "bench_10k.yaml");
  if (!spec.ok()) die(spec.error());
  t.parse = ms_since(t0);

  t0 = Clock::now();
  auto jobs = sweep::expand_grid(*spec);
  if (!jobs.ok()) die(jobs.error());
  t.expand = ms_since(t0);
  jobs_out = jobs->size();

  t0 = Clock::now();
  std::vector<sweep::NewJob> rows;
  rows.reserve(jobs->size());
  for (const sweep::ExpandedJob& job : *jobs) {
    if (job.is_duplicate()) continue;
    rows.push_back({job.hash, job.index, sweep::canonical_json(job.params), job.lora_scale});
  }
  const std::string spec_json = sweep::spec_to_json(*spec).dump();
  t.to_rows = ms_since(t0);

  t0 = Clock::now();
  auto store = sweep::Store::open(db_path.string());
  if (!store.ok()) die(store.error());
  auto sweep_id = (*store)->upsert_sweep(spec->name, spec->source_path, spec_json,
                                         spec->objective.metric, to_string(spec->objective.mode));
  if (!sweep_id.ok()) die(sweep_id.error());
  auto added = (*store)->upsert_jobs(*sweep_id, rows);
  if (!added.ok()) die(added.error());
  t.record_new = ms_since(t0);
  if (added->added != static_cast<int>(rows.size())) {
    std::fprintf(stderr, "error: %d of %zu jobs added\n", added->added, rows.size());
    std::exit(2);
  }

  t0 = Clock::now();
  auto again = (*store)->upsert_jobs(*sweep_id, rows);
  if (!again.ok()) die(again.error());
  t.record_again = ms_since(t0);
  if (again->existing != static_cast<int>(rows.size())) {
    std::fprintf(stderr, "error: rerun found %d of %zu jobs\n", again->existing, rows.size());
    std::exit(2);
  }
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 5;
  fs::path dir = fs::temp_directory_path();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--repeat")
      repeat = std::max(1, std::atoi(argv[i + 1]));
    else if (k == "--db-dir")
      dir = argv[i + 1];
  }
  dir /= "grid_bench_" + std::to_string(::getpid());
  std::vector<Times> runs;
  size_t jobs = 0;
  for (int r = 0; r < repeat; ++r) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    runs.push_back(run_once(dir / "sweep.db", jobs));
  }
  fs::remove_all(dir);

  auto med = [&](double Times::*field) {
    std::vector<double> v;
    for (const Times& t : runs) v.push_back(t.*field);
    return median(v);
  };
  std::vector<double> totals;
  for (const Times& t : runs) totals.push_back(t.expand_and_record());
  std::printf("grid_bench: %zu jobs, median of %d runs (ms)\n", jobs, repeat);
  std::printf("  parse sweep file          %8.1f\n", med(&Times::parse));
  std::printf("  expand + hash             %8.1f\n", med(&Times::expand));
  std::printf("  rows (canonical params)   %8.1f\n", med(&Times::to_rows));
  std::printf("  record new (SQLite file)  %8.1f\n", med(&Times::record_new));
  std::printf("  record again (all exist)  %8.1f\n", med(&Times::record_again));
  const double total = median(totals);
  std::printf("  expand + record total     %8.1f   target < 1000: %s\n", total,
              total < 1000 ? "met" : "MISSED");
  return 0;
}
