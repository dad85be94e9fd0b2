#include "orchestrator/run/scheduler.h"

#include <algorithm>

namespace sweep {

Scheduler::Scheduler(const ResourceSpec& resources) {
  if (resources.executor == ExecutorKind::kSlurm) {
    // One slot per Slurm job that may be queued or running at once.
    for (int i = 0; i < std::max(1, resources.slurm.max_submitted); ++i)
      slots_.push_back(Slot{i, -1, 0, resources.slurm.gpus_per_job > 0});
  } else if (resources.uses_gpus()) {
    // Interleave so that two jobs land on two GPUs before either GPU gets a second job.
    for (int k = 0; k < std::max(1, resources.jobs_per_gpu); ++k) {
      for (int gpu : resources.gpus)
        slots_.push_back(Slot{static_cast<int>(slots_.size()), gpu, 0});
    }
  } else {
    for (int i = 0; i < std::max(1, resources.slots); ++i) slots_.push_back(Slot{i, -1, 0});
  }
}

Slot* Scheduler::free_slot() {
  for (Slot& s : slots_) {
    if (s.job_id == 0) return &s;
  }
  return nullptr;
}

Slot* Scheduler::slot_of(int64_t job_id) {
  for (Slot& s : slots_) {
    if (s.job_id == job_id) return &s;
  }
  return nullptr;
}

void Scheduler::release(int64_t job_id) {
  for (Slot& s : slots_) {
    if (s.job_id == job_id) s.job_id = 0;
  }
}

int Scheduler::busy() const {
  return static_cast<int>(
      std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.job_id != 0; }));
}

}  // namespace sweep
