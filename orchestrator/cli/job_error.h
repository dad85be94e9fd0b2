// Why a job ended without a result, as `sweep status` and `sweep jobs` show it: the first line of
// the error its last attempt recorded (the worker's `failed` event, or the orchestrator's reason).
#pragma once

#include <string>

#include "db/store.h"

namespace sweep {

// The first non-empty line of job.error for a failed, diverged or infeasible job; empty for
// every other state. `max_chars` > 0 cuts a longer line, ending it with "...".
inline std::string job_error_line(const JobRecord& job, size_t max_chars = 0) {
  if (job.state != JobState::kFailed && job.state != JobState::kDiverged &&
      job.state != JobState::kInfeasible)
    return "";
  size_t start = job.error.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  size_t end = job.error.find('\n', start);
  std::string line = job.error.substr(start, end == std::string::npos ? end : end - start);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  if (max_chars > 3 && line.size() > max_chars) line = line.substr(0, max_chars - 3) + "...";
  return line;
}

}  // namespace sweep
