#include "orchestrator/run/slot_memory.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include <boost/process.hpp>

namespace sweep {

namespace bp = boost::process;

std::optional<int64_t> parse_nvidia_smi_mib(const std::string& line) {
  size_t i = 0;
  while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
  size_t digits = i;
  while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) ++digits;
  if (digits == i || digits - i > 12) return std::nullopt;
  for (size_t j = digits; j < line.size(); ++j) {
    if (!std::isspace(static_cast<unsigned char>(line[j]))) return std::nullopt;
  }
  return std::stoll(line.substr(i, digits - i)) * (int64_t{1} << 20);
}

std::optional<int64_t> gpu_total_memory(int index) {
  try {
    boost::filesystem::path smi = bp::search_path("nvidia-smi");
    if (smi.empty()) return std::nullopt;
    bp::ipstream out;
    bp::child child(smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i",
                    std::to_string(index), bp::std_out > out, bp::std_err > bp::null);
    std::string line;
    std::getline(out, line);
    child.wait();
    if (child.exit_code() != 0) return std::nullopt;
    return parse_nvidia_smi_mib(line);
  } catch (const std::exception&) {
    return std::nullopt;  // no driver: the plan says the size is unknown
  }
}

int64_t machine_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemTotal:") return kib * 1024;
  }
  return 0;
}

SlotMemory slot_memory(const ResourceSpec& resources) {
  SlotMemory m;
  if (resources.uses_gpus()) {
    // The smallest of the sweep's GPUs, shared by jobs_per_gpu jobs.
    for (int gpu : resources.gpus) {
      std::optional<int64_t> total = gpu_total_memory(gpu);
      if (!total) return {0, "GPU " + std::to_string(gpu) + ": nvidia-smi cannot tell"};
      if (m.bytes == 0 || *total / resources.jobs_per_gpu < m.bytes) {
        m.bytes = *total / resources.jobs_per_gpu;
        m.source = "GPU " + std::to_string(gpu) + " (nvidia-smi)";
      }
    }
    if (resources.jobs_per_gpu > 1) {
      m.source += " / " + std::to_string(resources.jobs_per_gpu) + " jobs per GPU";
    }
    return m;
  }
  if (resources.memory_gb > 0) {
    m.bytes = static_cast<int64_t>(resources.memory_gb * double(int64_t{1} << 30));
    m.source = "resources.memory_gb";
    return m;
  }
  const int64_t total = machine_memory();
  if (total == 0) return {0, "/proc/meminfo unreadable"};
  const int slots = std::max(1, resources.slots);
  m.bytes = total / slots;
  m.source = "this machine's memory / " + std::to_string(slots) + " slot(s)";
  return m;
}

}  // namespace sweep
