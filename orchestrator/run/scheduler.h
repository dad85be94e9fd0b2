// Slots and retries: which slot a job runs on (CPU slot i, or GPU id with jobs_per_gpu workers
// each), and what happens to a job after its worker ends. Pure logic, no processes or database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/store.h"
#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

struct Slot {
  int index = 0;
  int gpu = -1;  // -1: a CPU slot
  int64_t job_id = 0;  // 0 when free
  std::string device() const { return gpu < 0 ? "cpu" : "cuda:" + std::to_string(gpu); }
};

// How an attempt ended, as far as the loop could tell.
enum class AttemptEnd {
  kFinished,   // `finished` event
  kFailed,     // `failed` event or non-zero exit without one
  kDiverged,   // `failed` with diverged: true, or a NaN/inf loss
  kStopped,    // `stopped` after our SIGTERM (Ctrl-C): resumable
  kTimedOut,   // past max_job_time
  kCancelled,  // stopped because the user cancelled the sweep
  kLost,       // vanished without a final event
};

struct Decision {
  JobState state;     // what to record for the attempt
  bool requeue = false;  // true: the job goes back to pending afterwards
};

class Scheduler {
 public:
  explicit Scheduler(const ResourceSpec& resources);

  // A free slot, or nullptr when all are busy.
  Slot* free_slot();
  Slot* slot_of(int64_t job_id);
  void release(int64_t job_id);
  const std::vector<Slot>& slots() const { return slots_; }
  int busy() const;

  // `attempt`: attempts started so far (including the one that ended); `allowed`: how many the
  // job may have in all (retries + 1, plus any granted by `sweep retry`).
  static Decision decide(AttemptEnd end, int attempt, int allowed);

 private:
  std::vector<Slot> slots_;
};

}  // namespace sweep
