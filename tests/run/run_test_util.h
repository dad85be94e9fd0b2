// Helpers for the run-loop tests: a temporary world (data, base model dir, plan file, sweep file)
// and running the real `sweep` binary against the fake worker.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/process.hpp>
#include <nlohmann/json.hpp>

#include "db/store.h"

namespace sweep::testing {

struct CmdResult {
  int code = -1;
  std::string out, err;
};

class SweepWorld {
 public:
  // Creates a fresh directory under the system temp dir and points SWEEP_DB, SWEEP_RUNS,
  // SWEEP_CACHE and FAKE_WORKER_PLAN (inherited by sweep and its workers) into it.
  explicit SweepWorld(const std::string& name);
  ~SweepWorld();

  // Writes a sweep file running the fake worker with one job per seed in [0, jobs).
  // `extra` is appended verbatim (retries:, max_job_time:, ...); `pack` > 1 sets resources.pack.
  std::string write_spec(const std::string& name, int jobs, int max_steps, int eval_every,
                         const std::string& extra = "", int slots = 2, int pack = 1);
  void write_plan(const nlohmann::json& plan);

  CmdResult sweep(const std::vector<std::string>& args);
  // Started in the background; stdout/stderr go to files under root().
  boost::process::child sweep_async(const std::vector<std::string>& args);
  std::unique_ptr<Store> store();  // read-write connection (tests read through it)
  const std::string& root() const { return root_; }
  std::string db() const { return root_ + "/sweep.db"; }
  std::string runs() const { return root_ + "/runs"; }

 private:
  std::string root_;
  int calls_ = 0;
};

// Polls `done` every 50 ms for up to `timeout_s`; true when it became true.
bool wait_until(const std::function<bool()>& done, double timeout_s);

std::string read_file(const std::string& path);

}  // namespace sweep::testing
