#include "orchestrator/run/run_loop.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "orchestrator/run/run_lock.h"

namespace fs = std::filesystem;

namespace sweep {

namespace {

constexpr double kQueueRefreshS = 1.0;
constexpr double kObserverEveryS = 0.5;

RunLoop* g_signal_loop = nullptr;

void on_stop_signal(int) {
  if (g_signal_loop) g_signal_loop->request_stop();
}

std::string short_params(const std::string& params_json) {
  auto p = nlohmann::json::parse(params_json, nullptr, false);
  if (p.is_discarded() || !p.is_object()) return params_json;
  std::ostringstream out;
  for (const char* key : {"lora_r", "lora_alpha", "learning_rate", "batch_size"}) {
    if (p.contains(key)) out << key << "=" << p[key].dump() << " ";
  }
  std::string s = out.str();
  if (!s.empty()) s.pop_back();
  return s;
}

}  // namespace

std::string sweep_lock_path(const std::string& sweep_dir) { return sweep_dir + "/.lock"; }
std::string cancel_request_path(const std::string& sweep_dir) { return sweep_dir + "/.cancel"; }
std::string stop_file_path(const std::string& run_dir) { return run_dir + "/STOP"; }

std::string tail_lines(const std::string& path, int max_lines) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    lines.push_back(line);
    if (static_cast<int>(lines.size()) > max_lines) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : " | ") + l;
  return out;
}

RunLoop::RunLoop(Store& store, Executor& executor, RunConfig config, RunObserver* observer,
                 Clock& clock)
    : store_(store),
      executor_(executor),
      clock_(clock),
      config_(std::move(config)),
      observer_(observer),
      scheduler_(config_.resources) {
  if (::pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) wake_pipe_[0] = wake_pipe_[1] = -1;
}

RunLoop::~RunLoop() {
  if (g_signal_loop == this) {
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    g_signal_loop = nullptr;
  }
  if (wake_pipe_[0] >= 0) ::close(wake_pipe_[0]);
  if (wake_pipe_[1] >= 0) ::close(wake_pipe_[1]);
}

void RunLoop::request_stop() {
  stop_requests_.fetch_add(1);
  if (wake_pipe_[1] >= 0) {
    char c = 's';
    ssize_t n = ::write(wake_pipe_[1], &c, 1);
    (void)n;
  }
}

void RunLoop::install_signal_handlers() {
  g_signal_loop = this;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

std::string RunLoop::job_dir(const JobRecord& job) const {
  return config_.sweep_dir + "/" + job.hash;
}

void RunLoop::notify(const std::string& line) {
  if (observer_) observer_->on_event(line);
}

Result<RunSummary> RunLoop::run() {
  std::error_code ec;
  fs::create_directories(config_.sweep_dir, ec);
  fs::remove(cancel_request_path(config_.sweep_dir), ec);  // a request meant for an earlier run
  executor_.notify_exits(wake_pipe_[1]);
  auto result = run_until_done();
  executor_.notify_exits(-1);
  return result;
}

Result<RunSummary> RunLoop::run_until_done() {
  if (config_.early_stopping.enabled()) {
    stopper_ = std::make_unique<EarlyStopper>(store_, config_.sweep_id, config_.early_stopping);
    SWEEP_RETURN_IF_ERROR(stopper_->load());
    if (int stale = stopper_->stale_decisions(); stale > 0) {
      notify(std::to_string(stale) +
             " early-stopping decision(s) were made under another early_stopping section: they "
             "stand, but new verdicts do not compare with their values");
    }
  }
  auto jobs = store_.list_jobs(config_.sweep_id);
  if (!jobs.ok()) return jobs.error();
  started_jobs_ = static_cast<int>(
      std::count_if(jobs->begin(), jobs->end(), [](const JobRecord& j) { return j.attempt > 0; }));
  SWEEP_RETURN_IF_ERROR(recover());
  SWEEP_RETURN_IF_ERROR(refill_queue());
  while (true) {
    SWEEP_RETURN_IF_ERROR(handle_stop_requests());
    SWEEP_RETURN_IF_ERROR(check_cancel_request());
    double now = clock_.now();
    for (auto& w : workers_) SWEEP_RETURN_IF_ERROR(watch(*w, now));
    workers_.erase(
        std::remove_if(workers_.begin(), workers_.end(), [](const auto& w) { return w->done; }),
        workers_.end());
    Slot* slot = nullptr;
    while (!stopping_ && !queue_.empty() && (slot = scheduler_.free_slot()) != nullptr) {
      SWEEP_RETURN_IF_ERROR(launch_next(*slot));
    }
    tick_observer();
    if (workers_.empty()) {
      if (stopping_) break;
      if (queue_.empty()) {
        queue_refreshed_at_ = 0;
        SWEEP_RETURN_IF_ERROR(refill_queue());
        if (queue_.empty()) break;
        continue;
      }
    }
    if (queue_.empty() && scheduler_.free_slot()) SWEEP_RETURN_IF_ERROR(refill_queue());
    wait_tick();
  }
  auto counts = store_.count_by_state(config_.sweep_id);
  if (!counts.ok()) return counts.error();
  summary_.counts = *counts;
  summary_.interrupted = stopping_;
  return summary_;
}

Status RunLoop::refill_queue() {
  double now = clock_.now();
  if (now - queue_refreshed_at_ < kQueueRefreshS) return ok_status();
  queue_refreshed_at_ = now;
  auto pending = store_.list_jobs(config_.sweep_id, JobState::kPending);
  if (!pending.ok()) return pending.error();
  auto new_jobs_allowed = budget_allows_new_job();
  if (!new_jobs_allowed.ok()) return new_jobs_allowed.error();
  queue_.clear();
  for (const JobRecord& j : *pending) {
    bool active = false;
    for (const auto& w : workers_) {
      for (const auto& a : w->members) active = active || (a->job.id == j.id && !a->done);
    }
    if (j.attempt == 0 && !*new_jobs_allowed) continue;  // the budget is spent
    if (!active) queue_.push_back(j.id);
  }
  return ok_status();
}

void RunLoop::wait_tick() {
  clock_.wait(config_.poll_interval_s, wake_pipe_[0]);
  if (wake_pipe_[0] < 0) return;
  char buf[64];
  while (::read(wake_pipe_[0], buf, sizeof buf) > 0) {
  }
}

void RunLoop::tick_observer() {
  if (!observer_) return;
  double now = clock_.now();
  if (now - observed_at_ < kObserverEveryS) return;
  observed_at_ = now;
  auto counts = store_.count_by_state(config_.sweep_id);
  std::vector<RunningJob> running;
  for (const auto& w : workers_) {
    for (const auto& a : w->members) {
      if (a->done) continue;
      running.push_back(RunningJob{a->job.id, a->job.hash, short_params(a->job.params_json),
                                   a->job.device, a->job.attempt, a->started_at,
                                   a->ingestor->progress(), w->pack_id});
    }
  }
  observer_->on_tick(running, counts.ok() ? *counts : std::map<JobState, int>{});
}

Status RunLoop::handle_stop_requests() {
  int n = stop_requests_.load();
  if (n == stop_handled_) return ok_status();
  if (stop_handled_ == 0) {
    stopping_ = true;
    notify("stopping: no new jobs; asking " + std::to_string(workers_.size()) +
           " worker(s) to checkpoint and stop (press Ctrl-C again to kill them)");
    signal_all(false);
  }
  if (n >= 2) {
    notify("killing " + std::to_string(workers_.size()) + " worker(s)");
    signal_all(true);
  }
  stop_handled_ = n;
  return ok_status();
}

Status RunLoop::check_cancel_request() {
  if (cancelling_) return ok_status();
  std::error_code ec;
  if (!fs::exists(cancel_request_path(config_.sweep_dir), ec)) return ok_status();
  cancelling_ = stopping_ = true;
  fs::remove(cancel_request_path(config_.sweep_dir), ec);
  notify("sweep cancelled: stopping " + std::to_string(workers_.size()) + " worker(s)");
  for (auto& w : workers_) {
    for (auto& a : w->members) a->cancelled = true;
  }
  signal_all(false);
  auto pending = store_.list_jobs(config_.sweep_id, JobState::kPending);
  if (!pending.ok()) return pending.error();
  queue_.clear();
  return store_.transaction([&]() -> Status {
    for (const JobRecord& j : *pending) {
      SWEEP_RETURN_IF_ERROR(
          store_.set_state(j.id, JobState::kCancelled, "cancelled by sweep cancel"));
    }
    return ok_status();
  });
}

void RunLoop::signal_all(bool kill) {
  double now = clock_.now();
  for (auto& w : workers_) {
    if (kill) {
      executor_.kill(w->handle);
    } else {
      executor_.terminate(w->handle);
      if (w->term_sent_at == 0) w->term_sent_at = now;
    }
  }
}

RunLoop::Worker* RunLoop::worker_of_pid(int64_t pid) {
  for (auto& w : workers_) {
    if (w->handle.pid == pid && !w->done) return w.get();
  }
  return nullptr;
}

int RunLoop::active_jobs() const {
  int n = 0;
  for (const auto& w : workers_) {
    for (const auto& a : w->members) n += a->done ? 0 : 1;
  }
  return n;
}

}  // namespace sweep
