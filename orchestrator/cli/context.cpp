#include "orchestrator/cli/context.h"

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <iostream>

namespace sweep {

namespace {
std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}
}  // namespace

std::string CliContext::db_path() const {
  return !db_flag.empty() ? db_flag : env_or("SWEEP_DB", "runs/sweep.db");
}

std::string CliContext::runs_dir() const {
  return !runs_flag.empty() ? runs_flag : env_or("SWEEP_RUNS", "runs");
}

void CliContext::fail(const Error& error) {
  std::cerr << "error: " << error.message << "\n";
  if (!error.hint.empty()) std::cerr << "hint: " << error.hint << "\n";
  exit_code = error.exit_code();
}

std::string self_exe_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace sweep
