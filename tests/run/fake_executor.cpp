#include "fake_executor.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <type_traits>
#include <variant>

#include "protocol/exit_codes.h"

namespace fs = std::filesystem;

namespace sweep::testing {

namespace {

constexpr int kKilledExitCode = 128 + 9;  // what waitpid reports for SIGKILL

std::string normal(const std::string& path) { return fs::path(path).lexically_normal().string(); }

std::string checkpoint_path(int64_t step) { return "checkpoints/step-" + std::to_string(step); }

}  // namespace

WorkerScript& WorkerScript::add(Action action) {
  auto pos = std::upper_bound(actions_.begin(), actions_.end(), action.at,
                              [](double t, const Action& x) { return t < x.at; });
  actions_.insert(pos, std::move(action));
  return *this;
}

WorkerScript& WorkerScript::emit(double at, EventPayload event) {
  return add(Action{at, Action::Kind::kEmit, std::move(event), 0});
}

WorkerScript& WorkerScript::exit(double at, int code) {
  return add(Action{at, Action::Kind::kExit, UnknownEvent{}, code});
}

WorkerScript& WorkerScript::vanish(double at) {
  return add(Action{at, Action::Kind::kVanish, UnknownEvent{}, 0});
}

WorkerScript& WorkerScript::stderr_text(const std::string& text) {
  stderr_ += text;
  return *this;
}

WorkerScript& WorkerScript::ignore_term() {
  ignore_term_ = true;
  return *this;
}

WorkerScript WorkerScript::training(int steps) {
  WorkerScript s;
  StartedEvent started;
  started.host = "fake";
  started.device = "cpu";
  s.emit(0, started);
  for (int step = 1; step <= steps; ++step) {
    s.emit(step, ProgressEvent{step, {{"train_loss", 1.0 / step}, {"tokens_per_s", 100.0}}});
  }
  return s;
}

WorkerScript WorkerScript::succeeding(int steps, double val_loss) {
  WorkerScript s = training(steps);
  s.emit(steps, EvalEvent{steps, {{"val_loss", val_loss}}, std::nullopt, std::nullopt});
  s.emit(steps, CheckpointEvent{steps, checkpoint_path(steps), {{"val_loss", val_loss}}, {}});
  FinishedEvent finished;
  finished.step = steps;
  finished.final_metrics = {{"val_loss", val_loss}};
  s.emit(steps, finished);
  return s.exit(steps, kExitOk);
}

WorkerScript WorkerScript::failing(int steps, const std::string& message, bool diverged) {
  WorkerScript s = training(steps);
  s.emit(steps, FailedEvent{"train", message, diverged});
  return s.exit(steps, diverged ? kExitDiverged : kExitInternal);
}

struct FakeExecutor::Process {
  int64_t pid = 0;
  bool child = true;
  std::string job_json;  // lexically normal
  JobFile job;
  WorkerScript script;
  double started_at = 0;
  size_t next = 0;  // the next action of the script
  ProcessState state = ProcessState::kRunning;
  int exit_code = 0;
  int64_t last_step = 0;
  std::optional<double> term_at;
  std::optional<double> seen_ending;
  std::unique_ptr<EventWriter> events;
};

FakeExecutor::FakeExecutor(Clock& clock, ScriptFor script_for)
    : clock_(clock), script_for_(std::move(script_for)) {}

FakeExecutor::~FakeExecutor() = default;

Result<ProcessHandle> FakeExecutor::launch(const LaunchRequest& request) {
  if (launch_error_) return *launch_error_;
  auto p = std::make_unique<Process>();
  p->pid = next_pid_++;
  p->job_json = normal(request.argv.back());
  p->job = JobFile::read(p->job_json);
  p->script = script_for_(p->job);
  p->started_at = clock_.now();
  if (!p->script.stderr_lines().empty())
    std::ofstream(request.stderr_path) << p->script.stderr_lines();
  launches_.push_back(Launch{p->pid, p->started_at, request, p->job});
  int running = 0;
  for (const auto& [pid, q] : processes_) running += q->child && !q->seen_ending;
  peak_running_ = std::max(peak_running_, running + 1);
  int64_t pid = p->pid;
  processes_[pid] = std::move(p);
  return ProcessHandle{pid, true};
}

int64_t FakeExecutor::adopt(const std::string& job_json, const WorkerScript& script,
                            double started_at) {
  auto p = std::make_unique<Process>();
  p->pid = next_pid_++;
  p->child = false;
  p->job_json = normal(job_json);
  p->job = JobFile::read(p->job_json);
  p->script = script;
  p->started_at = started_at;
  int64_t pid = p->pid;
  processes_[pid] = std::move(p);
  return pid;
}

FakeExecutor::Process* FakeExecutor::find(int64_t pid) {
  auto it = processes_.find(pid);
  return it == processes_.end() ? nullptr : it->second.get();
}

void FakeExecutor::write(Process& p, const EventPayload& event) {
  if (!p.events) p.events = std::make_unique<EventWriter>(p.job.events_path(), p.job.attempt);
  if (const auto* progress = std::get_if<ProgressEvent>(&event)) p.last_step = progress->step;
  std::visit(
      [&](const auto& e) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(e)>, UnknownEvent>) p.events->emit(e);
      },
      event);
}

void FakeExecutor::run_until(Process& p, double elapsed) {
  const auto& actions = p.script.actions();
  while (p.state == ProcessState::kRunning && p.next < actions.size() &&
         actions[p.next].at <= elapsed) {
    const WorkerScript::Action& a = actions[p.next++];
    switch (a.kind) {
      case WorkerScript::Action::Kind::kEmit:
        write(p, a.event);
        break;
      case WorkerScript::Action::Kind::kExit:
        p.state = ProcessState::kExited;
        p.exit_code = a.code;
        break;
      case WorkerScript::Action::Kind::kVanish:
        p.state = ProcessState::kVanished;
        break;
    }
  }
}

void FakeExecutor::advance(Process& p) {
  if (p.state != ProcessState::kRunning) return;
  if (p.term_at && !p.script.ignores_term()) {
    // A cooperative worker: what it had done before SIGTERM, then a checkpoint and `stopped`.
    run_until(p, *p.term_at - p.started_at);
    if (p.state != ProcessState::kRunning) return;
    write(p, StoppedEvent{p.last_step, checkpoint_path(p.last_step)});
    p.state = ProcessState::kExited;
    p.exit_code = 0;
    return;
  }
  run_until(p, clock_.now() - p.started_at);
}

PollResult FakeExecutor::poll(const ProcessHandle& handle) {
  Process* p = find(handle.pid);
  if (!p) return PollResult{ProcessState::kVanished, 0};
  advance(*p);
  if (p->state == ProcessState::kRunning) return PollResult{};
  if (!p->seen_ending) p->seen_ending = clock_.now();
  if (p->state == ProcessState::kExited && handle.child) {
    return PollResult{ProcessState::kExited, p->exit_code};
  }
  return PollResult{ProcessState::kVanished, 0};
}

void FakeExecutor::terminate(const ProcessHandle& handle) {
  signals_.push_back(Signal{handle.pid, clock_.now(), false});
  Process* p = find(handle.pid);
  if (p && !p->term_at) p->term_at = clock_.now();
}

void FakeExecutor::kill(const ProcessHandle& handle) {
  signals_.push_back(Signal{handle.pid, clock_.now(), true});
  Process* p = find(handle.pid);
  if (!p) return;
  advance(*p);
  if (p->state != ProcessState::kRunning) return;
  p->state = ProcessState::kExited;
  p->exit_code = kKilledExitCode;
}

std::vector<int64_t> FakeExecutor::find_workers(const std::string& job_json) {
  std::vector<int64_t> pids;
  for (auto& [pid, p] : processes_) {
    advance(*p);
    if (p->state == ProcessState::kRunning && p->job_json == normal(job_json)) pids.push_back(pid);
  }
  return pids;
}

bool FakeExecutor::alive(int64_t pid) {
  Process* p = find(pid);
  if (!p) return false;
  advance(*p);
  return p->state == ProcessState::kRunning;
}

std::vector<FakeExecutor::Signal> FakeExecutor::signals_to(int64_t pid) const {
  std::vector<Signal> out;
  for (const Signal& s : signals_) {
    if (s.pid == pid) out.push_back(s);
  }
  return out;
}

std::optional<double> FakeExecutor::seen_ending(int64_t pid) const {
  auto it = processes_.find(pid);
  return it == processes_.end() ? std::nullopt : it->second->seen_ending;
}

}  // namespace sweep::testing
