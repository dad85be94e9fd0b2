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

// One job of a worker process.
struct FakeExecutor::Member {
  std::string job_json;  // lexically normal
  JobFile job;
  WorkerScript script;
  size_t next = 0;  // the next action of the script
  int64_t last_step = 0;
  bool final_written = false;
  bool done = false;
  std::unique_ptr<EventWriter> events;
};

struct FakeExecutor::Process {
  int64_t pid = 0;
  bool child = true;
  std::vector<Member> members;
  double started_at = 0;
  ProcessState state = ProcessState::kRunning;
  int exit_code = 0;
  std::optional<double> term_at;
  std::optional<double> seen_ending;
  bool packed() const { return members.size() > 1; }
};

FakeExecutor::FakeExecutor(Clock& clock, ScriptFor script_for)
    : clock_(clock), script_for_(std::move(script_for)) {}

FakeExecutor::~FakeExecutor() = default;

Result<ProcessHandle> FakeExecutor::launch(const LaunchRequest& request) {
  if (launch_error_) return *launch_error_;
  auto p = std::make_unique<Process>();
  p->pid = next_pid_++;
  Launch launch{p->pid, clock_.now(), request, JobFile{}, {}};
  for (size_t i = 1; i < request.argv.size(); ++i) {
    if (request.argv[i].size() < 9 ||
        request.argv[i].compare(request.argv[i].size() - 9, 9, "/job.json") != 0)
      continue;
    Member m;
    m.job_json = normal(request.argv[i]);
    m.job = JobFile::read(m.job_json);
    m.script = script_for_(m.job);
    launch.jobs.push_back(m.job);
    p->members.push_back(std::move(m));
  }
  launch.job = launch.jobs.front();
  p->started_at = clock_.now();
  std::string stderr_lines;
  for (const Member& m : p->members) stderr_lines += m.script.stderr_lines();
  if (!stderr_lines.empty()) std::ofstream(request.stderr_path) << stderr_lines;
  launches_.push_back(std::move(launch));
  int running = 0;
  for (const auto& [pid, q] : processes_) running += q->child && !q->seen_ending;
  peak_running_ = std::max(peak_running_, running + 1);
  int64_t pid = p->pid;
  processes_[pid] = std::move(p);
  return ProcessHandle{pid, true, ""};
}

int64_t FakeExecutor::adopt(const std::string& job_json, const WorkerScript& script,
                            double started_at) {
  return adopt_pack({job_json}, {script}, started_at);
}

int64_t FakeExecutor::adopt_pack(const std::vector<std::string>& job_jsons,
                                 const std::vector<WorkerScript>& scripts, double started_at) {
  auto p = std::make_unique<Process>();
  p->pid = next_pid_++;
  p->child = false;
  for (size_t i = 0; i < job_jsons.size(); ++i) {
    Member m;
    m.job_json = normal(job_jsons[i]);
    m.job = JobFile::read(m.job_json);
    m.script = scripts[i];
    p->members.push_back(std::move(m));
  }
  p->started_at = started_at;
  int64_t pid = p->pid;
  processes_[pid] = std::move(p);
  return pid;
}

FakeExecutor::Process* FakeExecutor::find(int64_t pid) {
  auto it = processes_.find(pid);
  return it == processes_.end() ? nullptr : it->second.get();
}

void FakeExecutor::write(Member& m, const EventPayload& event) {
  if (!m.events) m.events = std::make_unique<EventWriter>(m.job.events_path(), m.job.attempt);
  if (const auto* progress = std::get_if<ProgressEvent>(&event)) m.last_step = progress->step;
  if (std::holds_alternative<FinishedEvent>(event) || std::holds_alternative<StoppedEvent>(event) ||
      std::holds_alternative<FailedEvent>(event))
    m.final_written = true;
  std::visit(
      [&](const auto& e) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(e)>, UnknownEvent>) m.events->emit(e);
      },
      event);
}

void FakeExecutor::run_until(Process& p, double elapsed) {
  // The members' actions in time order (ties: the earlier member first), as one process would.
  while (p.state == ProcessState::kRunning) {
    Member* next = nullptr;
    for (Member& m : p.members) {
      if (m.done || m.next >= m.script.actions().size()) continue;
      const double at = m.script.actions()[m.next].at;
      if (at <= elapsed && (!next || at < next->script.actions()[next->next].at)) next = &m;
    }
    if (!next) return;
    const WorkerScript::Action& a = next->script.actions()[next->next++];
    switch (a.kind) {
      case WorkerScript::Action::Kind::kEmit:
        write(*next, a.event);
        break;
      case WorkerScript::Action::Kind::kExit:
        if (p.packed() && next->final_written) {  // this job is done; the others go on
          next->done = true;
          break;
        }
        p.state = ProcessState::kExited;
        p.exit_code = a.code;
        break;
      case WorkerScript::Action::Kind::kVanish:
        p.state = ProcessState::kVanished;
        break;
    }
    if (p.state == ProcessState::kRunning &&
        std::all_of(p.members.begin(), p.members.end(), [](const Member& m) { return m.done; })) {
      p.state = ProcessState::kExited;
      p.exit_code = 0;
    }
  }
}

void FakeExecutor::stop_member(Process& p, Member& m) {
  (void)p;
  write(m, StoppedEvent{m.last_step, checkpoint_path(m.last_step)});
  m.done = true;
}

void FakeExecutor::advance(Process& p) {
  if (p.state != ProcessState::kRunning) return;
  if (p.term_at) {
    // A cooperative worker: what it had done before SIGTERM, then a checkpoint and `stopped` for
    // each job that honours it.
    run_until(p, *p.term_at - p.started_at);
    if (p.state != ProcessState::kRunning) return;
    bool all_stopped = true;
    for (Member& m : p.members) {
      if (m.done) continue;
      if (m.script.ignores_term()) {
        all_stopped = false;
      } else {
        stop_member(p, m);
      }
    }
    if (all_stopped) {
      p.state = ProcessState::kExited;
      p.exit_code = 0;
      return;
    }
  }
  run_until(p, clock_.now() - p.started_at);
  if (p.state != ProcessState::kRunning || !p.packed()) return;
  std::error_code ec;
  for (Member& m : p.members) {
    if (!m.done && !m.script.ignores_term() && fs::exists(m.job.run_dir + "/STOP", ec))
      stop_member(p, m);
  }
  if (std::all_of(p.members.begin(), p.members.end(), [](const Member& m) { return m.done; })) {
    p.state = ProcessState::kExited;
    p.exit_code = 0;
  }
}

PollResult FakeExecutor::poll(const ProcessHandle& handle) {
  Process* p = find(handle.pid);
  if (!p) return PollResult::vanished();
  advance(*p);
  if (p->state == ProcessState::kRunning) return PollResult{};
  if (!p->seen_ending) p->seen_ending = clock_.now();
  if (p->state == ProcessState::kExited && handle.child) {
    return PollResult::exited(p->exit_code);
  }
  return PollResult::vanished();
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
    if (p->state != ProcessState::kRunning) continue;
    for (const Member& m : p->members) {
      if (m.job_json == normal(job_json)) {
        pids.push_back(pid);
        break;
      }
    }
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
