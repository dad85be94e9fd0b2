#include "orchestrator/run/retry_policy.h"

namespace sweep {

int allowed_attempts(int retries, int extra_attempts) { return retries + 1 + extra_attempts; }

RetryDecision decide_retry(AttemptEnd end, int attempt, int allowed) {
  bool left = attempt < allowed;
  switch (end) {
    case AttemptEnd::kFinished:
      return {JobState::kSucceeded, false};
    case AttemptEnd::kFailed:
      return {JobState::kFailed, left};
    case AttemptEnd::kDiverged:
      return {JobState::kDiverged, false};  // the same settings diverge again
    case AttemptEnd::kStopped:
      return {JobState::kPending, true};
    case AttemptEnd::kTimedOut:
      return {JobState::kFailed, false};  // a rerun would hit the same limit
    case AttemptEnd::kCancelled:
      return {JobState::kCancelled, false};
    case AttemptEnd::kLost:
      return {JobState::kLost, left};
    case AttemptEnd::kOrphaned:
      return {JobState::kLost, true};
    case AttemptEnd::kPruned:
      return {JobState::kPruned, false};  // its recorded stop decision stands
    case AttemptEnd::kInfeasible:
      return {JobState::kInfeasible, false};  // the same settings need the same memory
    case AttemptEnd::kNotLearning:
      return {JobState::kFailed, false};  // the same settings learn nothing again
    case AttemptEnd::kDiskFull:
      return {JobState::kFailed, false};  // until space is freed and the user asks (sweep retry)
    case AttemptEnd::kBadInput:
      return {JobState::kFailed, false};  // the same model file or data fails the same way
  }
  return {JobState::kFailed, false};
}

bool can_retry_from(JobState state) {
  // A pruned job's stop decision is recorded for good: run it again in a new sweep.
  return state != JobState::kPending && state != JobState::kRunning && state != JobState::kPruned;
}

int extra_attempts_for_retry(int attempts_so_far) { return attempts_so_far; }

Result<int> requeue_for_retry(Store& store, int64_t sweep_id, const std::vector<JobState>& states) {
  int requeued = 0;
  Status status = store.transaction([&]() -> Status {
    for (JobState state : states) {
      auto jobs = store.list_jobs(sweep_id, state);
      if (!jobs.ok()) return jobs.error();
      for (const JobRecord& job : *jobs) {
        SWEEP_RETURN_IF_ERROR(
            store.set_extra_attempts(job.id, extra_attempts_for_retry(job.attempt)));
        SWEEP_RETURN_IF_ERROR(store.set_state(job.id, JobState::kPending));
        ++requeued;
      }
    }
    return ok_status();
  });
  if (!status.ok()) return status.error();
  return requeued;
}

}  // namespace sweep
