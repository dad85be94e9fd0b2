// An Executor without processes, for unit tests of the run loop. Each launch reads the job.json
// files the loop wrote (one, or several for a pack) and asks the test for a WorkerScript per job:
// what the "worker" appends to that job's events.jsonl and how it ends, in seconds after its
// launch on the test's clock. In a pack, a job whose script exits after its final event is done
// while the others go on; an exit without a final event, or a vanish, ends the whole process; the
// process exits 0 when every job is done. A job of a pack stops at its run directory's STOP file
// as on SIGTERM. Scripts advance
// only when the loop looks (poll, find_workers, alive), so a whole sweep runs in milliseconds
// without a process or a sleep.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "orchestrator/run/clock.h"
#include "orchestrator/run/executor.h"
#include "protocol/events.h"
#include "protocol/job_file.h"

namespace sweep::testing {

// What one fake worker does. Times are seconds after its launch; actions at the same time run in
// the order they were added. A script without exit() or vanish() runs until it is signalled.
class WorkerScript {
 public:
  // Appends `event` to events.jsonl (seq, time and attempt added by EventWriter).
  WorkerScript& emit(double at, EventPayload event);
  // Ends with exit code `code`.
  WorkerScript& exit(double at, int code);
  // Disappears without an exit code (the loop sees ProcessState::kVanished).
  WorkerScript& vanish(double at);
  // Lines the worker writes to its stderr file when it starts.
  WorkerScript& stderr_text(const std::string& text);
  // SIGTERM is ignored: only kill() ends the worker. Without this, SIGTERM makes the worker write
  // `stopped` with its last step and exit 0 at the next poll.
  WorkerScript& ignore_term();

  // `started` at 0 s, then one `progress` per second for steps 1..`steps` (train_loss 1/step).
  static WorkerScript training(int steps);
  // training(steps), then at `steps` s an eval (val_loss), a checkpoint, `finished` and exit 0.
  static WorkerScript succeeding(int steps, double val_loss = 1.0);
  // training(steps), then at `steps` s a `failed` event (stage train) and exit code 2, or 3
  // when `diverged`.
  static WorkerScript failing(int steps, const std::string& message, bool diverged = false);

  struct Action {
    enum class Kind { kEmit, kExit, kVanish };
    double at = 0;
    Kind kind = Kind::kEmit;
    EventPayload event;
    int code = 0;
  };
  const std::vector<Action>& actions() const { return actions_; }
  const std::string& stderr_lines() const { return stderr_; }
  bool ignores_term() const { return ignore_term_; }

 private:
  WorkerScript& add(Action action);

  std::vector<Action> actions_;  // sorted by time, stable
  std::string stderr_;
  bool ignore_term_ = false;
};

class FakeExecutor : public Executor {
 public:
  // `script_for` decides each launched worker's script from its job.json (hash, attempt, params).
  using ScriptFor = std::function<WorkerScript(const JobFile& job)>;
  FakeExecutor(Clock& clock, ScriptFor script_for);
  ~FakeExecutor() override;

  Result<ProcessHandle> launch(const LaunchRequest& request) override;
  PollResult poll(const ProcessHandle& handle) override;
  void terminate(const ProcessHandle& handle) override;
  void kill(const ProcessHandle& handle) override;
  std::vector<int64_t> find_workers(const std::string& job_json) override;
  bool alive(int64_t pid) override;

  // A live worker this executor did not start, as one left behind by an orchestrator that died:
  // it runs `script` on `job_json` (which must exist) from clock time `started_at`. Its pid.
  int64_t adopt(const std::string& job_json, const WorkerScript& script, double started_at);
  // The same for a pack: scripts[i] runs on job_jsons[i].
  int64_t adopt_pack(const std::vector<std::string>& job_jsons,
                     const std::vector<WorkerScript>& scripts, double started_at);
  // From now on every launch fails with `error`.
  void fail_launches(Error error) { launch_error_ = std::move(error); }

  struct Launch {
    int64_t pid = 0;
    double at = 0;
    LaunchRequest request;
    JobFile job;                // the first (or only) job
    std::vector<JobFile> jobs;  // every job of the process
  };
  struct Signal {
    int64_t pid = 0;
    double at = 0;
    bool kill = false;  // false: SIGTERM
  };
  const std::vector<Launch>& launches() const { return launches_; }
  const std::vector<Signal>& signals() const { return signals_; }
  // Signals sent to one worker, in order.
  std::vector<Signal> signals_to(int64_t pid) const;
  // When the loop first saw the worker end; nullopt while it has not.
  std::optional<double> seen_ending(int64_t pid) const;
  // The most workers launched and not yet seen ending at any launch.
  int peak_running() const { return peak_running_; }

 private:
  struct Member;
  struct Process;
  void advance(Process& p);
  void run_until(Process& p, double elapsed);
  void stop_member(Process& p, Member& m);
  void write(Member& m, const EventPayload& event);
  Process* find(int64_t pid);

  Clock& clock_;
  ScriptFor script_for_;
  std::map<int64_t, std::unique_ptr<Process>> processes_;
  std::vector<Launch> launches_;
  std::vector<Signal> signals_;
  std::optional<Error> launch_error_;
  int64_t next_pid_ = 4000;
  int peak_running_ = 0;
};

}  // namespace sweep::testing
