// When a job is retried (docs/running.md, "Failures and retries"), in one place: what an attempt
// that ended in a given way is recorded as, whether the job goes back to pending, how many
// attempts a job may have, and what `sweep retry` grants. Pure rules apart from
// requeue_for_retry, which applies `sweep retry` to the store.
#pragma once

#include <cstdint>
#include <vector>

#include "db/store.h"

namespace sweep {

// How an attempt ended, as far as the run loop could tell.
enum class AttemptEnd {
  kFinished,     // `finished` event
  kFailed,       // `failed` event, or a non-zero exit without a final event
  kDiverged,     // `failed` with diverged: true, or a NaN/inf loss
  kStopped,      // `stopped` after our SIGTERM (Ctrl-C): resumable
  kTimedOut,     // ran past max_job_time
  kCancelled,    // stopped because the user cancelled the sweep
  kLost,         // vanished without a final event while the loop watched it
  kOrphaned,     // found dead without a final event after an orchestrator crash
  kPruned,       // stopped by early stopping at a rung
  kInfeasible,   // out of memory at its settings (`failed` with out_of_memory, or exit code 4)
  kNotLearning,  // stopped by its failed learning check (`failed` with not_learning)
  kDiskFull,     // no space left in the run directory (`failed` with disk_full, or exit code 5)
  kBadInput,     // input that can only fail again (`failed` with bad_input, or exit code 1)
};

struct RetryDecision {
  JobState recorded;     // the state the attempt (and the job) is recorded in
  bool requeue = false;  // true: the job is pending afterwards and runs again
};

// Attempts a job may have in all: `retries` + 1 from the sweep file, plus `extra_attempts`
// granted by `sweep retry` (Store::extra_attempts).
int allowed_attempts(int retries, int extra_attempts);

// `attempt`: attempts started so far, the one that ended included. Failed and lost attempts are
// retried while attempt < allowed; a stop is recorded as pending (resumable, not a failure); an
// orphaned attempt is re-queued whatever the count (the orchestrator's crash, not the job, is
// the likely cause); diverged, timed-out, cancelled, pruned, infeasible, not-learning and
// bad-input attempts are final. A disk-full attempt is final too (recorded failed): a blind retry
// would fill the same disk again; `sweep retry` runs it once space is freed.
RetryDecision decide_retry(AttemptEnd end, int attempt, int allowed);

// True for the states `sweep retry --state` accepts: every final state but pruned, and lost.
bool can_retry_from(JobState state);

// The extra_attempts that give a job which has had `attempts_so_far` a fresh budget of
// retries + 1 attempts.
int extra_attempts_for_retry(int attempts_so_far);

// `sweep retry`: every job of the sweep in one of `states` is given a fresh budget and put back
// to pending, in one transaction. Returns how many were re-queued.
Result<int> requeue_for_retry(Store& store, int64_t sweep_id, const std::vector<JobState>& states);

}  // namespace sweep
