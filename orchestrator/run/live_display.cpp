#include "orchestrator/run/live_display.h"

#include <cmath>
#include <sstream>

#include <spdlog/spdlog.h>

#include "db/store.h"

namespace sweep {

namespace {
constexpr double kPlainEveryS = 30;
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  long s = std::lround(seconds);
  std::ostringstream out;
  if (s >= 3600)
    out << s / 3600 << "h" << (s % 3600) / 60 << "m";
  else if (s >= 60)
    out << s / 60 << "m" << s % 60 << "s";
  else
    out << s << "s";
  return out.str();
}

std::string format_job_line(const RunningJob& job, double now, const LatestEval* eval) {
  const JobProgress& p = job.progress;
  char buf[64];
  std::ostringstream out;
  out << job.hash.substr(0, 8) << " " << job.params_json << "  " << p.step;
  if (p.max_steps > 0) out << "/" << p.max_steps;
  if (p.train_loss) {
    std::snprintf(buf, sizeof buf, " loss %.4f", *p.train_loss);
    out << buf;
  }
  if (eval) {
    std::snprintf(buf, sizeof buf, " %.4f@%lld", eval->value, static_cast<long long>(eval->step));
    out << " " << eval->metric << buf;
  }
  if (p.tokens_per_s) {
    std::snprintf(buf, sizeof buf, " %.0f tok/s", *p.tokens_per_s);
    out << buf;
  }
  double elapsed = now - job.started_at;
  if (p.max_steps > 0 && p.step > 0 && elapsed > 0) {
    out << " ETA " << format_duration(elapsed / p.step * (p.max_steps - p.step));
  }
  if (job.attempt > 1) out << " (attempt " << job.attempt << ")";
  return out.str();
}

std::string format_counts(const std::map<JobState, int>& counts) {
  std::string out;
  for (JobState s : all_job_states()) {
    auto it = counts.find(s);
    if (it == counts.end() || it->second == 0) continue;
    out += (out.empty() ? "" : ", ") + std::string(to_string(s)) + " " + std::to_string(it->second);
  }
  return out.empty() ? "no jobs" : out;
}

LiveDisplay::LiveDisplay(bool tty, int total_jobs, std::FILE* out)
    : tty_(tty), total_jobs_(total_jobs), out_(out) {}

LiveDisplay::~LiveDisplay() {
  if (tty_) std::fflush(out_);
}

void LiveDisplay::clear_block() {
  // Move up over the previous block and clear it, so event lines scroll above the live block.
  for (int i = 0; i < drawn_lines_; ++i) std::fputs("\x1b[1A\x1b[2K", out_);
  drawn_lines_ = 0;
}

void LiveDisplay::on_event(const std::string& line) {
  if (!tty_) {
    spdlog::info("{}", line);
    return;
  }
  clear_block();
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

void LiveDisplay::on_tick(const std::vector<RunningJob>& running,
                          const std::map<JobState, int>& counts) {
  double now = unix_time_now();
  if (!tty_) {
    if (now - last_plain_ < kPlainEveryS) return;
    last_plain_ = now;
    spdlog::info("{} of {} jobs: {}", running.size(), total_jobs_, format_counts(counts));
    return;
  }
  clear_block();
  for (const RunningJob& job : running) {
    std::fprintf(out_, "  %s\n", format_job_line(job, now, latest_eval(job)).c_str());
    ++drawn_lines_;
  }
  std::fprintf(out_, "[%d jobs] %s\n", total_jobs_, format_counts(counts).c_str());
  ++drawn_lines_;
  std::fflush(out_);
}

void LiveDisplay::show_evals(Store& store, std::string metric) {
  store_ = &store;
  metric_ = std::move(metric);
}

const LatestEval* LiveDisplay::latest_eval(const RunningJob& job) {
  if (!store_) return nullptr;
  CachedEval& cached = evals_[job.job_id];
  if (cached.at_step != job.progress.step) {
    cached.at_step = job.progress.step;
    // Step 0 is the base model's score, not the job's.
    if (auto rows = store_->evals(job.job_id); rows.ok()) {
      for (auto it = rows->rbegin(); it != rows->rend(); ++it) {
        auto v = it->metrics.find(metric_);
        if (it->step > 0 && v != it->metrics.end()) {
          cached.eval = LatestEval{metric_, it->step, v->second};
          break;
        }
      }
    }
  }
  return cached.eval ? &*cached.eval : nullptr;
}

}  // namespace sweep
