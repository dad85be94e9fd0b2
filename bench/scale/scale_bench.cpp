// The results store at scale: generates a sweep of 100,000 jobs, 10,000,000 metric rows and
// 1,200,000 eval rows through the store's own ingestion API (start_attempt, add_metrics, add_eval,
// add_checkpoint, add_learning_check, finish_attempt; so every table the store derives from the
// rows is maintained as in a real run), one transaction per batch of jobs, and reports the
// ingestion rate. Then it times the real `sweep leaderboard`, `sweep best` and `sweep status` on
// that database (each the best of --repeat runs, output to /dev/null).
// Usage: scale_bench [--jobs N] [--steps N] [--evals N] [--batch JOBS] [--db PATH]
//                    [--repeat N] [--reuse 1]
#include <sqlite3.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "db/store.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check(const sweep::Status& s) {
  if (!s.ok()) {
    std::cerr << "scale_bench: " << s.error().to_string() << "\n";
    std::exit(2);
  }
}

template <typename T>
void check(const sweep::Result<T>& r) {
  if (!r.ok()) check(sweep::Status(r.error()));
}

struct Options {
  int jobs = 100000;
  int steps = 20;     // progress events per job, 5 metrics each: 100 metric rows per job
  int evals = 4;      // evaluations per job (step 0 included), 3 metrics each: 12 eval rows per job
  int batch = 10000;  // jobs per transaction
  int repeat = 5;
  std::string db;
  bool reuse = false;
};

struct Totals {
  long long metric_rows = 0, eval_rows = 0;
  double metric_seconds = 0;          // inside add_metrics only
  double best_batch_rows_per_s = 0;   // metric rows / wall time of the fastest transaction
  double worst_batch_rows_per_s = 0;  // ... of the slowest
};

// 3% of the jobs fail, 10% are pruned, the last 8 still run (a sweep runs as many jobs as it has
// slots), the rest succeed; one job in 1,000 fails
// its learning check; the checkpoint of every third job's best step was deleted by save_top_k.
Totals generate(const Options& o) {
  fs::remove(o.db);
  fs::remove(o.db + "-wal");
  fs::remove(o.db + "-shm");
  auto store = sweep::Store::open(o.db);
  if (!store.ok()) check(store.error());
  sweep::Store& s = **store;
  auto sweep_id = s.upsert_sweep("scale", "sweeps/scale.yaml", "{}", "val_loss", "min");
  if (!sweep_id.ok()) check(sweep_id.error());
  std::vector<sweep::NewJob> grid;
  const int ranks[] = {4, 8, 16, 32, 64};
  const double lrs[] = {5e-5, 1e-4, 2e-4, 5e-4};
  for (int i = 0; i < o.jobs; ++i) {
    const int r = ranks[i % 5], alpha = r * (1 + (i / 5) % 4);
    grid.push_back({"job" + std::to_string(i), i,
                    "{\"lora_r\":" + std::to_string(r) +
                        ",\"lora_alpha\":" + std::to_string(alpha) +
                        ",\"learning_rate\":" + std::to_string(lrs[(i / 20) % 4]) +
                        ",\"batch_size\":" + std::to_string(8 << ((i / 80) % 2)) + ",\"seed\":" +
                        std::to_string(i / 160) + ",\"max_steps\":" + std::to_string(o.steps) + "}",
                    static_cast<double>(alpha) / r});
  }
  check(s.upsert_jobs(*sweep_id, grid));
  auto rows = s.list_jobs(*sweep_id);
  if (!rows.ok()) check(rows.error());

  // Checkpoint paths under the database's folder; make_best_checkpoints creates a few of them.
  const std::string runs = (fs::path(o.db).parent_path() / "runs").string();
  Totals t;
  std::vector<double> batch_rates;
  for (size_t first = 0; first < rows->size(); first += static_cast<size_t>(o.batch)) {
    const size_t last = std::min(rows->size(), first + static_cast<size_t>(o.batch));
    long long batch_rows = 0;
    const auto b0 = Clock::now();
    check(s.transaction([&]() -> sweep::Status {
      for (size_t n = first; n < last; ++n) {
        const sweep::JobRecord& j = (*rows)[n];
        const bool failed = n % 33 == 0, pruned = !failed && n % 10 == 0,
                   running = !failed && !pruned && n + 8 >= rows->size();
        const int end = failed ? o.steps / 3 : (pruned ? o.steps / 2 : o.steps);
        const double quality = 0.5 + 0.5 * std::sin(static_cast<double>(n) * 0.37);
        const std::string dir = runs + "/" + j.hash;
        check(s.start_attempt(j.id, 1000 + static_cast<int64_t>(n), "node", "cuda:0", dir));
        const auto m0 = Clock::now();
        for (int step = 1; step <= end; ++step) {
          const double loss = 3.0 * std::exp(-step * 0.03 * quality) + 0.3;
          check(s.add_metrics(j.id, 1, step,
                              {{"train_loss", loss},
                               {"lr", 1e-4},
                               {"grad_norm", 1.0 / step},
                               {"tokens_per_s", 900.0},
                               {"samples_seen", step * 16.0}},
                              {step * 16, step * 16 * 900}));
        }
        t.metric_seconds += seconds_since(m0);
        t.metric_rows += 5LL * end;
        batch_rows += 5LL * end;
        for (int e = 0; e < o.evals; ++e) {
          const int step = e * o.steps / std::max(1, o.evals - 1);
          if (step > end) break;
          // Evaluations 2 and 3 of every fifth job tie; step 0 is the base model (2.0).
          const double v = (n % 5 == 0 && e >= 2) ? 2.0 - 1.2 * quality * 2 / (o.evals - 1)
                                                  : 2.0 - 1.2 * quality * e / (o.evals - 1);
          check(s.add_eval(j.id, 1, step,
                           {{"val_loss", v},
                            {"val_token_acc", 0.3 + 0.1 * e * quality},
                            {"val_exact_match", 0.1 * e}},
                           {step * 16, step * 16 * 900}));
          t.eval_rows += 3;
          if (step > 0) {
            const std::string ckpt = dir + "/step-" + std::to_string(step);
            check(s.add_checkpoint(j.id, step, ckpt, "{}"));
            if (n % 3 == 0 && e + 1 < o.evals) check(s.mark_checkpoint_deleted(j.id, ckpt));
          }
        }
        if (end >= o.steps / 10) {
          sweep::LearningCheckRow c;
          c.job_id = j.id;
          c.step = o.steps / 10;
          c.passed = n % 1000 != 7;
          c.lora_b_norm = c.passed ? 0.02 : 0.0;
          c.lora_grad_norm = 0.5;
          c.loss_first = 3.3;
          c.loss_last = c.passed ? 3.1 : 3.3;
          if (!c.passed) c.reason = "lora_b_norm stayed 0";
          check(s.add_learning_check(c));
        }
        if (running) continue;
        check(s.finish_attempt(
            j.id,
            failed ? sweep::JobState::kFailed
                   : (pruned ? sweep::JobState::kPruned : sweep::JobState::kSucceeded),
            failed ? std::optional<int>(2) : std::optional<int>(0),
            failed ? "train: CUDA out of memory\nTraceback ..." : ""));
      }
      return sweep::ok_status();
    }));
    batch_rates.push_back(static_cast<double>(batch_rows) / seconds_since(b0));
  }
  t.best_batch_rows_per_s = *std::max_element(batch_rates.begin(), batch_rates.end());
  t.worst_batch_rows_per_s = *std::min_element(batch_rates.begin(), batch_rates.end());
  return t;
}

// What ingestion is compared with, in the same run: the same metric rows (5 per step, `steps`
// steps for each of `jobs` jobs) inserted straight into a fresh database of this schema through one
// prepared INSERT OR REPLACE in one transaction, with the store's connection settings (foreign
// keys on) and nothing else: no job_progress row, no std::map, no error context.
double raw_sqlite_rows_per_s(const std::string& path, int jobs, int steps) {
  fs::remove(path);
  fs::remove(path + "-wal");
  fs::remove(path + "-shm");
  {
    auto store = sweep::Store::open(path);
    if (!store.ok()) check(store.error());
    auto sweep_id = (*store)->upsert_sweep("raw", "sweeps/raw.yaml", "{}", "val_loss", "min");
    if (!sweep_id.ok()) check(sweep_id.error());
    std::vector<sweep::NewJob> grid;
    for (int i = 0; i < jobs; ++i) grid.push_back({"job" + std::to_string(i), i, "{}", 1.0});
    check((*store)->upsert_jobs(*sweep_id, grid));
  }
  sqlite3* db = nullptr;
  sqlite3_stmt* insert = nullptr;
  auto ok = [&](int rc) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE) {
      std::cerr << "scale_bench: raw SQLite on " << path << ": " << sqlite3_errmsg(db) << "\n";
      std::exit(2);
    }
  };
  ok(sqlite3_open(path.c_str(), &db));
  ok(sqlite3_exec(db,
                  "PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; "
                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
                  nullptr, nullptr, nullptr));
  ok(sqlite3_prepare_v2(db,
                        "INSERT OR REPLACE INTO metrics (job_id, name, step, attempt, value, "
                        "samples_seen, tokens_seen) VALUES (?, ?, ?, 1, ?, ?, ?)",
                        -1, &insert, nullptr));
  const char* names[] = {"train_loss", "lr", "grad_norm", "tokens_per_s", "samples_seen"};
  const auto t0 = Clock::now();
  ok(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr));
  for (int job = 1; job <= jobs; ++job) {
    for (int step = 1; step <= steps; ++step) {
      for (const char* name : names) {
        sqlite3_reset(insert);
        sqlite3_bind_int64(insert, 1, job);
        sqlite3_bind_text(insert, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(insert, 3, step);
        sqlite3_bind_double(insert, 4, 1.0 / step);
        sqlite3_bind_int64(insert, 5, step * 16);
        sqlite3_bind_int64(insert, 6, step * 16 * 900);
        ok(sqlite3_step(insert));
      }
    }
  }
  ok(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr));
  const double seconds = seconds_since(t0);
  sqlite3_finalize(insert);
  sqlite3_close(db);
  fs::remove(path);
  fs::remove(path + "-wal");
  fs::remove(path + "-shm");
  return 5.0 * jobs * steps / seconds;
}

// The kept checkpoints of the 20 best jobs exist on disk, so that `sweep best` finds one.
void make_best_checkpoints(const std::string& db) {
  auto store = sweep::Store::open(db);
  if (!store.ok()) check(store.error());
  auto sweep = (*store)->resolve_sweep("scale");
  if (!sweep.ok()) check(sweep.error());
  auto rows = (*store)->leaderboard(sweep->id, "val_loss", false);
  if (!rows.ok()) check(rows.error());
  for (size_t i = 0; i < rows->size() && i < 20; ++i) {
    if (!(*rows)[i].checkpoint_path.empty()) fs::create_directories((*rows)[i].checkpoint_path);
  }
}

// Best wall time of `repeat` runs of `command` (its output to /dev/null), or -1 when it fails.
double best_seconds(const std::string& command, int repeat) {
  double best = -1;
  for (int i = 0; i < repeat; ++i) {
    const auto t0 = Clock::now();
    const int status = std::system((command + " >/dev/null 2>&1").c_str());
    const double t = seconds_since(t0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    if (best < 0 || t < best) best = t;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.db = (fs::temp_directory_path() / "sweep-scale-bench" / "scale.db").string();
  const char* usage =
      "usage: scale_bench [--jobs N] [--steps N] [--evals N] [--batch JOBS] [--db PATH] "
      "[--repeat N] [--reuse 1]\n";
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << usage;
      return 0;
    }
    if (i + 1 >= argc) {
      std::cerr << "scale_bench: " << flag << " needs a value\n" << usage;
      return 2;
    }
    const std::string value = argv[i + 1];
    if (flag == "--jobs") {
      o.jobs = std::atoi(value.c_str());
    } else if (flag == "--steps") {
      o.steps = std::atoi(value.c_str());
    } else if (flag == "--evals") {
      o.evals = std::atoi(value.c_str());
    } else if (flag == "--batch") {
      o.batch = std::max(1, std::atoi(value.c_str()));
    } else if (flag == "--db") {
      o.db = value;
    } else if (flag == "--repeat") {
      o.repeat = std::max(1, std::atoi(value.c_str()));
    } else if (flag == "--reuse") {
      o.reuse = value == "1";
    } else {
      std::cerr << "scale_bench: unknown flag " << flag << "\n" << usage;
      return 2;
    }
  }
  fs::create_directories(fs::path(o.db).parent_path());
  if (!o.reuse || !fs::exists(o.db)) {
    const auto t0 = Clock::now();
    const Totals t = generate(o);
    const double total = seconds_since(t0);
    std::printf(
        "generated %d jobs, %lld metric rows, %lld eval rows in %.1f s (transactions of %d "
        "jobs)\n",
        o.jobs, t.metric_rows, t.eval_rows, total, o.batch);
    std::printf(
        "ingestion: %.0f metric rows/s inside add_metrics; per transaction (everything of its "
        "jobs) %.0f - %.0f metric rows/s\n",
        static_cast<double>(t.metric_rows) / t.metric_seconds, t.worst_batch_rows_per_s,
        t.best_batch_rows_per_s);
    const int raw_jobs = std::min(o.jobs, 10000);
    const double raw = raw_sqlite_rows_per_s(o.db + ".raw", raw_jobs, o.steps);
    std::printf(
        "raw SQLite, the same rows of %d jobs, one prepared INSERT, foreign keys on: %.0f metric "
        "rows/s (add_metrics reaches %.0f%% of it)\n",
        raw_jobs, raw, 100.0 * static_cast<double>(t.metric_rows) / t.metric_seconds / raw);
    std::fflush(stdout);
    make_best_checkpoints(o.db);
  } else {
    // A database from an earlier build is brought to this build's schema first.
    auto store = sweep::Store::open(o.db);
    if (!store.ok()) check(store.error());
  }
  {
    // Fold the write-ahead log into the file, so that the size printed is the database's.
    sqlite3* db = nullptr;
    if (sqlite3_open(o.db.c_str(), &db) != SQLITE_OK ||
        sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr) !=
            SQLITE_OK) {
      std::cerr << "scale_bench: checkpointing " << o.db << ": " << sqlite3_errmsg(db) << "\n";
    }
    sqlite3_close(db);
  }
  std::printf("database %s: %.0f MB\n", o.db.c_str(),
              static_cast<double>(fs::file_size(o.db)) / 1e6);
  const std::string env = "SWEEP_DB='" + o.db + "' ";
  const std::string cli = std::string("'") + SWEEP_EXE + "' ";
  const struct {
    const char* label;
    std::string args;
  } commands[] = {
      {"sweep leaderboard scale", "leaderboard scale"},
      {"sweep leaderboard scale --top 0 (every row)", "leaderboard scale --top 0"},
      {"sweep leaderboard scale --top 10", "leaderboard scale --top 10"},
      {"sweep leaderboard scale --metric val_token_acc",
       "leaderboard scale --metric val_token_acc"},
      {"sweep leaderboard scale --format csv", "leaderboard scale --format csv"},
      {"sweep best scale --allow-no-gain", "best scale --allow-no-gain"},
      {"sweep status scale", "status scale"},
      {"sweep version", "version"},
  };
  for (const auto& c : commands) {
    const double t = best_seconds(env + cli + c.args, o.repeat);
    if (t < 0) {
      std::printf("%-48s failed (run it by hand: %s%s%s)\n", c.label, env.c_str(), cli.c_str(),
                  c.args.c_str());
    } else {
      std::printf("%-48s %7.1f ms (best of %d)\n", c.label, t * 1000, o.repeat);
    }
  }
  return 0;
}
