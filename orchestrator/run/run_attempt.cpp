// One attempt of one job inside the run loop: launching its worker, watching it, and recording
// how it ended.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/failure.h"
#include "orchestrator/run/run_lock.h"
#include "orchestrator/run/run_loop.h"
#include "protocol/exit_codes.h"
#include "protocol/pack.h"

namespace fs = std::filesystem;

namespace sweep {

namespace {

constexpr int kStderrTailLines = 5;

int64_t max_steps_of(const std::string& params_json) {
  auto p = nlohmann::json::parse(params_json, nullptr, false);
  if (p.is_object() && p.contains("max_steps") && p["max_steps"].is_number()) {
    return p["max_steps"].get<int64_t>();
  }
  return 0;
}

// The exit code a member of a pack would have had alone (docs/worker-protocol.md): from its final
// event, or the process's own code when it wrote none.
std::optional<int> member_exit_code(const JobProgress& p, const PollResult& pr) {
  if (p.final_event) {
    const auto* failed = p.final_event->as<FailedEvent>();
    if (!failed) return kExitOk;  // finished or stopped
    if (failed->diverged) return kExitDiverged;
    if (failed->disk_full) return kExitDiskFull;
    if (failed->bad_input || failed->stage == "load_model" || failed->stage == "load_data")
      return kExitBadInput;
    return kExitInternal;
  }
  if (pr.state == ProcessState::kExited) return pr.exit_code;
  return std::nullopt;
}

std::string final_message(const FailedEvent& e) {
  return e.stage.empty() ? e.message : e.stage + ": " + e.message;
}

}  // namespace

Status RunLoop::launch_next(Slot& slot) {
  int64_t job_id = queue_.front();
  queue_.erase(queue_.begin());
  auto job = store_.get_job(job_id);
  if (!job.ok()) return job.error();
  if (job->state != JobState::kPending) return ok_status();  // cancelled or taken meanwhile
  if (job->attempt == 0) {
    auto allowed = budget_allows_new_job();
    if (!allowed.ok()) return allowed.error();
    if (!*allowed) return ok_status();  // left pending: the budget is spent
  }
  std::vector<JobRecord> jobs{*job};
  std::vector<JobFile> files{job_file_for(*job, slot)};
  if (config_.resources.pack > 1) {
    if (job->attempt == 0) ++started_jobs_;  // the budget counts the lead before its mates
    auto mates = take_pack_mates(*job, files[0], slot);
    if (job->attempt == 0) --started_jobs_;
    if (!mates.ok()) return mates.error();
    for (const JobRecord& m : *mates) {
      jobs.push_back(m);
      files.push_back(job_file_for(m, slot));
    }
  }
  return launch_worker(slot, std::move(jobs), std::move(files));
}

JobFile RunLoop::job_file_for(const JobRecord& job, const Slot& slot) const {
  JobFile jf;
  jf.sweep = config_.sweep_name;
  jf.job_id = job.hash;
  jf.attempt = job.attempt + 1;
  jf.run_dir = fs::absolute(job_dir(job)).lexically_normal().string();
  jf.base_model = config_.base_model;
  jf.train_data = config_.train_data;
  jf.val_data = config_.val_data;
  jf.image_folder = config_.image_folder;
  jf.max_image_pixels = config_.max_image_pixels;
  jf.params = nlohmann::json::parse(job.params_json, nullptr, false);
  jf.objective_metric = config_.objective.metric;
  jf.objective_mode = to_string(config_.objective.mode);
  jf.threads = config_.resources.threads_per_job;
  jf.device = slot.uses_gpu() ? "cuda" : "cpu";
  jf.resume = true;
  jf.heartbeat_seconds = config_.heartbeat_s;
  // One per sweep: every job of the sweep trains on the same base model and images.
  jf.feature_cache = fs::absolute(config_.sweep_dir + "/feature-cache").lexically_normal().string();
  if (stopper_) jf.eval_at_tokens = stopper_->rungs_for(jf.params);
  return jf;
}

Result<std::vector<JobRecord>> RunLoop::take_pack_mates(const JobRecord& lead,
                                                        const JobFile& lead_file,
                                                        const Slot& slot) {
  std::vector<JobRecord> mates;
  auto lead_packable = capture([&] { return packable(lead_file); });
  if (!lead_packable.ok() || !*lead_packable) return mates;  // runs alone
  const nlohmann::json key = pack_key(lead_file);
  int new_jobs = 0;
  for (auto it = queue_.begin();
       it != queue_.end() && static_cast<int>(mates.size()) + 1 < config_.resources.pack;) {
    auto job = store_.get_job(*it);
    if (!job.ok()) return job.error();
    bool take = job->state == JobState::kPending && job->id != lead.id;
    if (take && job->attempt == 0) {
      started_jobs_ += new_jobs;  // as if the mates taken so far had started
      auto allowed = budget_allows_new_job();
      started_jobs_ -= new_jobs;
      if (!allowed.ok()) return allowed.error();
      take = *allowed;
    }
    if (take) {
      JobFile file = job_file_for(*job, slot);
      auto fits = capture([&] { return packable(file) && pack_key(file) == key; });
      take = fits.ok() && *fits;
    }
    if (!take) {
      ++it;
      continue;
    }
    if (job->attempt == 0) ++new_jobs;
    mates.push_back(*job);
    it = queue_.erase(it);
  }
  return mates;
}

Status RunLoop::launch_worker(Slot& slot, std::vector<JobRecord> jobs, std::vector<JobFile> files) {
  LaunchRequest req;
  req.argv = config_.worker_argv;
  for (JobFile& jf : files) {
    std::error_code ec;
    fs::create_directories(jf.run_dir, ec);
    if (ec) {
      return make_error(ErrorKind::kIo,
                        "cannot create run directory " + jf.run_dir + ": " + ec.message());
    }
    fs::remove(stop_file_path(jf.run_dir), ec);  // a request meant for an earlier attempt
    std::string job_json = jf.run_dir + "/job.json";
    SWEEP_RETURN_IF_ERROR(capture([&] { jf.write(job_json); }));
    req.argv.push_back(job_json);
  }
  // A pack's output goes to its first job's run directory.
  const JobFile& lead = files.front();
  req.working_dir = lead.run_dir;
  req.stdout_path = lead.run_dir + "/worker-" + std::to_string(lead.attempt) + ".out";
  req.stderr_path = lead.run_dir + "/worker-" + std::to_string(lead.attempt) + ".err";
  if (slot.gpu >= 0) {
    req.env["CUDA_VISIBLE_DEVICES"] = std::to_string(slot.gpu);
  } else if (!slot.cluster_gpu) {
    req.env["OMP_NUM_THREADS"] = std::to_string(config_.resources.threads_per_job);
  }
  auto handle = executor_.launch(req);
  const std::string who = handle.ok() ? executor_.describe(*handle) : "";
  if (!handle.ok()) {
    if (handle.error().kind == ErrorKind::kNotFound) return handle.error();  // nothing can run
    for (const JobRecord& job : jobs) SWEEP_RETURN_IF_ERROR(launch_failed(job, handle.error()));
    return ok_status();
  }
  // worker.pid covers the gap before the attempt is stored: a restart finds and stops it.
  // Best effort: a full disk fails the worker soon, and the attempt row covers it from here on.
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string line =
        std::to_string(handle->pid) + " " + req.argv[config_.worker_argv.size() + i] + "\n";
    Status written = capture([&] { write_file_atomic(files[i].run_dir + "/worker.pid", line); });
    (void)written;
  }
  auto w = std::make_unique<Worker>();
  w->handle = *handle;
  SWEEP_RETURN_IF_ERROR(store_.transaction([&]() -> Status {
    if (jobs.size() == 1) {
      SWEEP_RETURN_IF_ERROR(
          store_.start_attempt(jobs[0].id, handle->pid, host_name(), slot.device(), lead.run_dir));
    } else {
      std::vector<PackMemberStart> members;
      for (size_t i = 0; i < jobs.size(); ++i) members.push_back({jobs[i].id, files[i].run_dir});
      auto pack_id = store_.start_pack_attempts(members, handle->pid, host_name(), slot.device());
      if (!pack_id.ok()) return pack_id.error();
      w->pack_id = *pack_id;
      ++summary_.packs;
    }
    // A cluster's own id for the worker: a restarted orchestrator finds it again by this.
    if (handle->executor_id.empty()) return ok_status();
    for (const JobRecord& job : jobs)
      SWEEP_RETURN_IF_ERROR(store_.set_executor_id(job.id, handle->executor_id));
    return ok_status();
  }));
  std::string hashes;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const JobRecord& job = jobs[i];
    auto a = std::make_unique<Active>();
    a->job = job;
    a->job.attempt = files[i].attempt;
    a->job.device = slot.device();
    a->job.run_dir = files[i].run_dir;
    a->handle = *handle;
    a->ingestor = std::make_unique<Ingestor>(
        store_, job.id, files[i].attempt, files[i].events_path(), job.events_offset, job.last_seq);
    a->ingestor->set_max_steps(max_steps_of(job.params_json));
    a->stderr_path = req.stderr_path;
    a->started_at = clock_.now();
    ++summary_.launched;
    if (job.attempt == 0) ++started_jobs_;
    hashes += (hashes.empty() ? "" : ", ") + job.hash + " (attempt " +
              std::to_string(files[i].attempt) + ")";
    w->members.push_back(std::move(a));
  }
  slot.job_id = jobs.front().id;
  w->slot_key = jobs.front().id;
  if (w->packed()) {
    notify("started pack " + std::to_string(w->pack_id) + " of " + std::to_string(jobs.size()) +
           " jobs: " + hashes + ", " + slot.device() + ", " + who);
  } else {
    notify("started job " + jobs[0].hash + " (attempt " + std::to_string(lead.attempt) + ", " +
           slot.device() + ", " + who + ")");
  }
  workers_.push_back(std::move(w));
  return ok_status();
}

Status RunLoop::launch_failed(const JobRecord& job, const Error& error) {
  notify("job " + job.hash + " could not start: " + error.message);
  SWEEP_RETURN_IF_ERROR(store_.start_attempt(job.id, 0, host_name(), "", job_dir(job)));
  return store_.finish_attempt(job.id, JobState::kFailed, std::nullopt, error.message);
}

Status RunLoop::watch(Worker& w, double now) {
  for (auto& a : w.members) {
    if (a->done) continue;
    auto n = a->ingestor->poll();
    if (!n.ok()) return n.error();
    SWEEP_RETURN_IF_ERROR(judge(w, *a, now));
  }
  PollResult pr = executor_.poll(w.handle);
  if (pr.state == ProcessState::kRunning) {
    bool all_asked = true;  // every member still training was asked to stop through STOP
    double asked_at = now;
    int training = 0;
    for (auto& a : w.members) {
      if (a->done) continue;
      if (w.packed() && a->ingestor->progress().final_event) {
        SWEEP_RETURN_IF_ERROR(finish_member_early(*a));
        continue;
      }
      ++training;
      if (config_.max_job_time_s > 0 && !a->timed_out &&
          now - a->started_at > config_.max_job_time_s) {
        a->timed_out = true;
        notify("job " + a->job.hash + " ran past max_job_time; stopping it");
        stop_member(w, *a, now);
      }
      all_asked = all_asked && a->stop_file_at > 0;
      if (a->stop_file_at > 0) asked_at = std::min(asked_at, a->stop_file_at);
    }
    if (w.term_sent_at > 0 && now - w.term_sent_at > config_.term_grace_s) {
      executor_.kill(w.handle);
    } else if (w.packed() && w.term_sent_at == 0 && training > 0 && all_asked &&
               now - asked_at > config_.term_grace_s) {
      // Every member left ignores its STOP file: the whole process may be stopped now.
      w.term_sent_at = now;
      executor_.terminate(w.handle);
    }
    return ok_status();
  }
  // The process ended: read what each member wrote last before deciding.
  for (auto& a : w.members) {
    if (a->done) continue;
    auto n = a->ingestor->poll();
    if (!n.ok()) return n.error();
    SWEEP_RETURN_IF_ERROR(judge(w, *a, now));
    std::string error;
    AttemptEnd end = classify(*a, pr, &error);
    std::optional<int> code;
    if (w.packed()) {
      code = member_exit_code(a->ingestor->progress(), pr);
    } else if (pr.state == ProcessState::kExited) {
      code = pr.exit_code;
    }
    SWEEP_RETURN_IF_ERROR(finish(*a, end, code, error));
  }
  if (w.slot_key != 0) scheduler_.release(w.slot_key);
  w.done = true;
  return ok_status();
}

Status RunLoop::finish_member_early(Active& a) {
  std::string error;
  AttemptEnd end = classify(a, PollResult{}, &error);
  return finish(a, end, member_exit_code(a.ingestor->progress(), PollResult{}), error);
}

void RunLoop::stop_member(Worker& w, Active& a, double now) {
  if (!w.packed()) {
    if (w.term_sent_at == 0) w.term_sent_at = now;
    executor_.terminate(w.handle);
    return;
  }
  if (a.stop_file_at > 0) return;
  a.stop_file_at = now;
  auto written = capture([&] { write_file_atomic(stop_file_path(a.job.run_dir), "stop\n"); });
  if (!written.ok()) notify("job " + a.job.hash + ": " + written.error().message);
}

AttemptEnd RunLoop::classify(const Active& a, const PollResult& pr, std::string* error) const {
  const JobProgress& p = a.ingestor->progress();
  if (a.timed_out) {
    *error = "ran past max_job_time (" + std::to_string(static_cast<int>(config_.max_job_time_s)) +
             " s)";
    return AttemptEnd::kTimedOut;
  }
  if (pr.cluster_end != ClusterEnd::kNone &&
      !(p.final_event && p.final_event->as<FinishedEvent>())) {
    return classify_cluster_end(a, pr, error);
  }
  if (p.final_event) {
    const Event& e = *p.final_event;
    if (e.as<FinishedEvent>()) return AttemptEnd::kFinished;  // done before the stop landed
    if (a.pruned && !e.as<FailedEvent>()) {
      *error = a.pruned_reason;
      return AttemptEnd::kPruned;
    }
    if (const auto* failed = e.as<FailedEvent>()) {
      *error = final_message(*failed);
      if (failed->out_of_memory) return AttemptEnd::kInfeasible;
      if (failed->not_learning) return AttemptEnd::kNotLearning;
      if (failed->disk_full) return AttemptEnd::kDiskFull;
      if (failed->bad_input) return AttemptEnd::kBadInput;
      return failed->diverged || p.nonfinite_loss ? AttemptEnd::kDiverged : AttemptEnd::kFailed;
    }
    const auto* stopped = e.as<StoppedEvent>();
    *error = "stopped at step " + std::to_string(stopped ? stopped->step : int64_t{0});
    return a.cancelled ? AttemptEnd::kCancelled : AttemptEnd::kStopped;
  }
  if (a.cancelled) {
    *error = "cancelled";
    return AttemptEnd::kCancelled;
  }
  if (a.pruned) {  // stopped by early stopping, with or without its final event
    *error = a.pruned_reason;
    return AttemptEnd::kPruned;
  }
  if (stopping_) {
    *error = "stopped by the user";
    return AttemptEnd::kStopped;
  }
  if (pr.state == ProcessState::kVanished) {
    *error = (a.handle.executor_id.empty() ? "worker process " + std::to_string(a.handle.pid)
                                           : "worker " + executor_.describe(a.handle)) +
             " vanished without a final event" + (pr.detail.empty() ? "" : " (" + pr.detail + ")");
    return AttemptEnd::kLost;
  }
  if (p.nonfinite_loss) {
    *error = "loss became NaN/inf";
    return AttemptEnd::kDiverged;
  }
  std::string tail = tail_lines(a.stderr_path, kStderrTailLines);
  *error = "worker exited with code " + std::to_string(pr.exit_code) + " without a final event" +
           (tail.empty() ? "" : ": " + tail);
  switch (pr.exit_code) {
    case kExitOutOfMemory:
      return AttemptEnd::kInfeasible;
    case kExitDiskFull:
      return AttemptEnd::kDiskFull;
    case kExitBadInput:
      return AttemptEnd::kBadInput;
    default:
      return AttemptEnd::kFailed;
  }
}

AttemptEnd RunLoop::classify_cluster_end(const Active& a, const PollResult& pr,
                                         std::string* error) const {
  const JobProgress& p = a.ingestor->progress();
  switch (pr.cluster_end) {
    case ClusterEnd::kOutOfMemory:
      *error = pr.detail + ": out of memory at these settings";
      return AttemptEnd::kInfeasible;
    case ClusterEnd::kCancelled:
      *error = pr.detail + " (cancelled outside sweep)";
      return AttemptEnd::kCancelled;
    default:
      break;
  }
  // Time limit, preemption, node failure: the worker resumes from its last checkpoint.
  *error = pr.detail + ": interrupted by the cluster at step " + std::to_string(p.step) +
           "; runs again from its last checkpoint";
  return AttemptEnd::kLost;
}

Status RunLoop::finish(Active& a, AttemptEnd end, std::optional<int> exit_code, std::string error) {
  auto fresh = store_.get_job(a.job.id);
  if (!fresh.ok()) return fresh.error();
  auto extra = store_.extra_attempts(a.job.id);
  if (!extra.ok()) return extra.error();
  RetryDecision d = decide_retry(end, fresh->attempt, allowed_attempts(config_.retries, *extra));
  JobState recorded = d.recorded;  // pending only for a stop: resumable, not a failure
  SWEEP_RETURN_IF_ERROR(store_.transaction([&]() -> Status {
    SWEEP_RETURN_IF_ERROR(store_.finish_attempt(a.job.id, recorded, exit_code, error));
    if (d.requeue && recorded != JobState::kPending) {
      return store_.set_state(a.job.id, JobState::kPending);
    }
    return ok_status();
  }));
  std::error_code ec;
  fs::remove(a.job.run_dir + "/worker.pid", ec);
  a.done = true;
  if (d.requeue && !stopping_) queue_.push_back(a.job.id);
  std::string what = to_string(recorded);
  if (d.requeue && recorded != JobState::kPending) what += ", re-queued";
  notify("job " + a.job.hash + " " + what + (error.empty() ? "" : ": " + error));
  return ok_status();
}

Status RunLoop::judge(Worker& w, Active& a, double now) {
  if (!stopper_ || !a.ingestor->take_new_evals()) return ok_status();
  auto made = stopper_->judge(a.job.id, now);
  if (!made.ok()) return made.error();
  for (const RungDecision& d : *made) notify(describe_decision(a.job.hash, d));
  if (!made->empty() && made->back().action == "stop") return prune(w, a, made->back(), now);
  return ok_status();
}

void RunLoop::mark_pruned(Active& a, const RungDecision& stop) {
  a.pruned = true;
  std::ostringstream reason;
  reason << "stopped early at rung " << stop.rung << " (" << stop.metric << " " << stop.value
         << ", rank " << stop.rank << " of " << stop.peers << ")";
  a.pruned_reason = reason.str();
}

Status RunLoop::prune(Worker& w, Active& a, const RungDecision& stop, double now) {
  if (a.pruned) return ok_status();
  mark_pruned(a, stop);
  // The worker checkpoints and stops the job on SIGTERM (alone) or its STOP file (in a pack); a
  // lone worker that ignores it is killed after term_grace_s like any other.
  stop_member(w, a, now);
  return ok_status();
}

Result<bool> RunLoop::budget_allows_new_job() {
  const BudgetSpec& b = config_.budget;
  std::string reached;
  if (b.max_jobs > 0 && started_jobs_ >= b.max_jobs) {
    reached = "max_jobs " + std::to_string(b.max_jobs);
  } else if (b.max_tokens > 0 || b.max_steps > 0) {
    auto used = store_.compute_used(config_.sweep_id);
    if (!used.ok()) return used.error();
    if (b.max_tokens > 0 && used->tokens >= b.max_tokens) {
      reached = "max_tokens " + std::to_string(b.max_tokens);
    } else if (b.max_steps > 0 && used->steps >= b.max_steps) {
      reached = "max_steps " + std::to_string(b.max_steps);
    }
  }
  if (reached.empty()) return true;
  if (!budget_reported_) {
    budget_reported_ = true;
    notify("budget reached (" + reached + "): jobs not started yet stay pending");
  }
  return false;
}

}  // namespace sweep
