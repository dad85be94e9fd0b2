// What a running `sweep run` shows. On a terminal: a block redrawn in place with one line per
// running job (params, step/max, loss, tokens/s, ETA) and the totals per state. Otherwise (a pipe,
// a log file, CI): one spdlog line per event and a short progress line every 30 s.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "orchestrator/run/run_loop.h"

namespace sweep {

class Store;

// A job's latest evaluation of one metric (the sweep's objective), shown beside its loss.
struct LatestEval {
  std::string metric;
  int64_t step = 0;
  double value = 0;
};

class LiveDisplay : public RunObserver {
 public:
  // `tty`: redraw in place (use isatty on stderr's fd to decide).
  LiveDisplay(bool tty, int total_jobs, std::FILE* out = stderr);
  ~LiveDisplay() override;
  void on_event(const std::string& line) override;
  void on_tick(const std::vector<RunningJob>& running,
               const std::map<JobState, int>& counts) override;
  // Shows each running job's latest evaluation of `metric`, read from `store` (not owned; it
  // outlives the display) when the job's step has moved.
  void show_evals(Store& store, std::string metric);

 private:
  void clear_block();
  const LatestEval* latest_eval(const RunningJob& job);

  struct CachedEval {
    int64_t at_step = -1;  // the job's step when it was read
    std::optional<LatestEval> eval;
  };
  Store* store_ = nullptr;
  std::string metric_;
  std::map<int64_t, CachedEval> evals_;  // by job id

  bool tty_;
  int total_jobs_;
  std::FILE* out_;
  int drawn_lines_ = 0;
  double last_plain_ = 0;
};

// "12/120 loss 1.234 val_loss 1.301@10 850 tok/s ETA 3m10s" for one job; pieces that are unknown
// (no evaluation yet) are left out.
std::string format_job_line(const RunningJob& job, double now, const LatestEval* eval = nullptr);
// "succeeded 3, running 2, pending 7, failed 1" (states with zero jobs are left out).
std::string format_counts(const std::map<JobState, int>& counts);
std::string format_duration(double seconds);

}  // namespace sweep
