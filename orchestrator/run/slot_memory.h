// How much memory one slot of a sweep may use, for `sweep plan`'s memory estimates: a GPU's total
// memory as nvidia-smi reports it, or, for CPU slots, resources.memory_gb, else this machine's
// memory shared evenly among the slots.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

struct SlotMemory {
  int64_t bytes = 0;   // 0: unknown
  std::string source;  // how it was found, for the plan's line ("GPU 0 (nvidia-smi)", ...)
};

SlotMemory slot_memory(const ResourceSpec& resources);

// Total memory of GPU `index` from `nvidia-smi --query-gpu=memory.total`; nullopt without a
// driver or that GPU.
std::optional<int64_t> gpu_total_memory(int index);

// MemTotal of /proc/meminfo; 0 when unreadable.
int64_t machine_memory();

// "memory.total" as nvidia-smi prints it with --format=csv,noheader,nounits (MiB): bytes.
std::optional<int64_t> parse_nvidia_smi_mib(const std::string& line);

}  // namespace sweep
