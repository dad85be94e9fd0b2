// The orchestrator's run loop (docs/architecture.md): takes pending jobs of one sweep, starts a
// worker per free slot with its own job.json, ingests every worker's events while it runs, records
// how each attempt ended and re-queues what may be retried (retry_policy.h). It also picks up
// after a crash of a previous orchestrator: workers still alive are re-attached, the others' jobs
// re-queued.
//
// The loop reaches processes only through its Executor and time only through its Clock, so a
// fake of each runs it in tests without processes or sleeps.
//
// Not thread-safe; one RunLoop per sweep per process (RunLock enforces one per sweep).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "db/store.h"
#include "orchestrator/run/clock.h"
#include "orchestrator/run/early_stopping.h"
#include "orchestrator/run/executor.h"
#include "orchestrator/run/ingestor.h"
#include "orchestrator/run/retry_policy.h"
#include "orchestrator/run/scheduler.h"
#include "orchestrator/spec/sweep_spec.h"
#include "protocol/job_file.h"

namespace sweep {

struct RunConfig {
  int64_t sweep_id = 0;
  std::string sweep_name;
  std::string sweep_dir;  // <runs>/<sweep>: one sub-directory per job hash
  // The worker program and its leading arguments; the job.json path is appended.
  std::vector<std::string> worker_argv;
  ResourceSpec resources;
  int retries = 0;
  double max_job_time_s = 0;  // 0: no limit
  // Paths already resolved (no builtin: refs) and the objective, copied into every job.json.
  std::string base_model, train_data, val_data, image_folder;
  int max_image_pixels = 0;  // data.max_image_pixels; 0: none given
  Objective objective;
  EarlyStoppingSpec early_stopping;  // rule kNone: every job runs to max_steps
  BudgetSpec budget;
  double poll_interval_s = 0.15;
  double term_grace_s = 30;  // SIGTERM → SIGKILL after this long (timeout, second stop)
  double heartbeat_s = 10;
};

// A snapshot of one running job for displays.
struct RunningJob {
  int64_t job_id = 0;
  std::string hash;
  std::string params_json;
  std::string device;
  int attempt = 0;
  double started_at = 0;
  JobProgress progress;
  int64_t pack_id = 0;  // 0: its worker runs it alone
};

struct RunSummary {
  std::map<JobState, int> counts;  // of the whole sweep at the end
  int launched = 0;                // attempts started (each member of a pack counts)
  int packs = 0;                   // worker processes started with several jobs
  int reattached = 0;
  bool interrupted = false;  // stopped by the user before every job ran
};

// Observes the loop: the live display and plain log lines are both observers.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void on_event(const std::string& line) = 0;  // one human line (started, ended, ...)
  virtual void on_tick(const std::vector<RunningJob>& running,
                       const std::map<JobState, int>& counts) = 0;
};

class RunLoop {
 public:
  // `clock` must outlive the loop; every time the loop reads or waits for goes through it.
  RunLoop(Store& store, Executor& executor, RunConfig config, RunObserver* observer = nullptr,
          Clock& clock = system_clock());
  ~RunLoop();

  // Runs until no job is pending or running, or until stopped. Database failures end it with
  // the error; worker failures never do.
  Result<RunSummary> run();

  // Asks the loop to stop: the first call stops new launches and sends SIGTERM to the workers
  // (they checkpoint), the second kills them. Async-signal-safe (an atomic and a pipe write).
  void request_stop();
  // Installs SIGINT/SIGTERM handlers that call request_stop() on this loop until it ends.
  void install_signal_handlers();

 private:
  // One job's attempt the loop watches: started by this loop or re-attached after a restart.
  struct Active {
    JobRecord job;         // as of the launch; job.attempt is this attempt's number
    ProcessHandle handle;  // its worker process, shared by every member of a pack
    std::unique_ptr<Ingestor> ingestor;
    std::string stderr_path;
    double started_at = 0;
    double stop_file_at = 0;  // 0: no STOP file written (packs only)
    bool timed_out = false;
    bool cancelled = false;
    bool pruned = false;  // early stopping stopped it: its attempt ends `pruned`
    std::string pruned_reason;
    bool done = false;
  };
  // One worker process: one job, or a pack of several compatible jobs (protocol/pack.h) that
  // occupies one slot until the process exits. A member of a pack is stopped alone through its
  // run directory's STOP file; SIGTERM stops every member.
  struct Worker {
    ProcessHandle handle;
    int64_t pack_id = 0;      // 0: one job alone
    int64_t slot_key = 0;     // the job id its slot is held under; 0: unslotted
    double term_sent_at = 0;  // 0: no SIGTERM sent yet
    std::vector<std::unique_ptr<Active>> members;
    bool done = false;
    bool packed() const { return pack_id != 0; }
  };

  Result<RunSummary> run_until_done();
  Status recover();
  Status refill_queue();
  Status launch_next(Slot& slot);
  // The queued jobs that may join `lead` in one worker (at most resources.pack - 1, in queue
  // order); they leave the queue.
  Result<std::vector<JobRecord>> take_pack_mates(const JobRecord& lead, const JobFile& lead_file,
                                                 const Slot& slot);
  JobFile job_file_for(const JobRecord& job, const Slot& slot) const;
  Status launch_worker(Slot& slot, std::vector<JobRecord> jobs, std::vector<JobFile> files);
  Status watch(Worker& worker, double now);
  // A member of a pack that wrote its final event while the process goes on.
  Status finish_member_early(Active& member);
  Status finish(Active& active, AttemptEnd end, std::optional<int> exit_code, std::string error);
  // Stops one job: SIGTERM to a lone worker, the STOP file for a member of a pack.
  void stop_member(Worker& worker, Active& member, double now);
  Worker* worker_of_pid(int64_t pid);
  int active_jobs() const;
  Status handle_stop_requests();
  Status check_cancel_request();
  Status kill_orphan(const JobRecord& job);
  Status reattach_or_requeue(const JobRecord& job, int64_t pack_id, const std::string& executor_id);
  Status launch_failed(const JobRecord& job, const Error& error);
  // Early stopping: judges the job's new evaluations and stops it when a verdict says so.
  Status judge(Worker& worker, Active& active, double now);
  // mark_pruned + stop_member
  Status prune(Worker& worker, Active& active, const RungDecision& stop, double now);
  void mark_pruned(Active& active, const RungDecision& stop);
  Status recover_decisions();
  // Budget: whether a job that never started may start now (jobs already started always may).
  Result<bool> budget_allows_new_job();
  AttemptEnd classify(const Active& active, const PollResult& poll, std::string* error) const;
  // A worker the cluster ended by itself (time limit, preemption, out of memory, cancelled from
  // outside): lost (re-queued while attempts remain), infeasible or cancelled.
  AttemptEnd classify_cluster_end(const Active& active, const PollResult& poll,
                                  std::string* error) const;
  void signal_all(bool kill);
  void wait_tick();
  std::string job_dir(const JobRecord& job) const;
  void notify(const std::string& line);
  void tick_observer();

  Store& store_;
  Executor& executor_;
  Clock& clock_;
  RunConfig config_;
  RunObserver* observer_;
  Scheduler scheduler_;
  std::unique_ptr<EarlyStopper> stopper_;  // null without early stopping
  int started_jobs_ = 0;                   // jobs of the sweep ever started (budget.max_jobs)
  bool budget_reported_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<int64_t> queue_;  // pending job ids, front first
  double queue_refreshed_at_ = 0;
  bool stopping_ = false;
  bool cancelling_ = false;
  double observed_at_ = 0;
  std::atomic<int> stop_requests_{0};
  int stop_handled_ = 0;
  int wake_pipe_[2] = {-1, -1};
  RunSummary summary_;
};

// Files in <runs>/<sweep>/ that other commands use to talk to a running loop.
std::string sweep_lock_path(const std::string& sweep_dir);      // .lock (RunLock)
std::string cancel_request_path(const std::string& sweep_dir);  // .cancel (`sweep cancel`)
// <run_dir>/STOP: asks a worker to stop that one job of its pack (docs/worker-protocol.md).
std::string stop_file_path(const std::string& run_dir);

// Last `max_lines` lines of a text file (for the error of a worker that died without a message).
std::string tail_lines(const std::string& path, int max_lines);

}  // namespace sweep
