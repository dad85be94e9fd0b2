// Slots: which slot a job runs on (CPU slot i, or GPU id with jobs_per_gpu workers each; under
// Slurm, max_submitted slots whose GPUs, if any, the cluster assigns). Pure
// logic, no processes or database. What happens to a job after its worker ends is
// retry_policy.h's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

struct Slot {
  int index = 0;
  int gpu = -1;              // -1: a CPU slot
  int64_t job_id = 0;        // 0 when free
  bool cluster_gpu = false;  // a GPU the cluster picks (gres): the worker sees it as "cuda"
  bool uses_gpu() const { return gpu >= 0 || cluster_gpu; }
  std::string device() const {
    if (cluster_gpu) return "cuda";
    return gpu < 0 ? "cpu" : "cuda:" + std::to_string(gpu);
  }
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

 private:
  std::vector<Slot> slots_;
};

}  // namespace sweep
