#include "orchestrator/run/local_executor.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>

namespace bp = boost::process;

namespace sweep {

namespace {

Result<std::string> find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0) {
      return make_error(ErrorKind::kNotFound, "worker program " + name + " is missing or not executable",
                        "build sweep-worker, set $SWEEP_WORKER, or fix `worker: {command: [...]}`");
    }
    return name;
  }
  auto found = bp::search_path(name);
  if (found.empty()) {
    return make_error(ErrorKind::kNotFound, "worker program " + name + " was not found in PATH",
                      "give an absolute path in `worker: {command: [...]}`");
  }
  return found.string();
}

}  // namespace

Result<ProcessHandle> LocalExecutor::launch(const LaunchRequest& request) {
  if (request.argv.empty()) return make_error(ErrorKind::kInternal, "empty worker argv");
  auto exe = find_executable(request.argv[0]);
  if (!exe.ok()) return exe.error();
  std::vector<std::string> args(request.argv.begin() + 1, request.argv.end());
  bp::environment env = boost::this_process::environment();
  for (const auto& [key, value] : request.env) env[key] = value;
  try {
    // Own process group: the terminal's SIGINT goes to the orchestrator only.
    bp::child child(bp::exe = *exe, bp::args = args, env,
                    bp::start_dir = request.working_dir.empty() ? "." : request.working_dir,
                    bp::std_in < bp::null, bp::std_out > request.stdout_path,
                    bp::std_err > request.stderr_path,
                    bp::extend::on_exec_setup = [](auto&) { ::setpgid(0, 0); });
    ProcessHandle handle{child.id(), true};
    // We reap with waitpid ourselves; a detached bp::child never kills the worker on destruction.
    child.detach();
    return handle;
  } catch (const std::exception& e) {
    return make_error(ErrorKind::kIo, "could not start worker " + *exe + ": " + e.what());
  }
}

PollResult LocalExecutor::poll(const ProcessHandle& handle) {
  if (!handle.child) {
    return process_alive(handle.pid) ? PollResult{} : PollResult{ProcessState::kVanished, 0};
  }
  int status = 0;
  pid_t r = ::waitpid(static_cast<pid_t>(handle.pid), &status, WNOHANG);
  if (r == 0) return PollResult{};
  if (r < 0) return PollResult{ProcessState::kVanished, 0};  // not our child any more
  if (WIFEXITED(status)) return PollResult{ProcessState::kExited, WEXITSTATUS(status)};
  if (WIFSIGNALED(status)) return PollResult{ProcessState::kExited, 128 + WTERMSIG(status)};
  return PollResult{};
}

void LocalExecutor::terminate(const ProcessHandle& handle) {
  ::kill(static_cast<pid_t>(handle.pid), SIGTERM);
}

void LocalExecutor::kill(const ProcessHandle& handle) {
  // The whole group: a worker's own helpers go with it.
  ::kill(-static_cast<pid_t>(handle.pid), SIGKILL);
  ::kill(static_cast<pid_t>(handle.pid), SIGKILL);
}

bool process_alive(int64_t pid) {
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return !text.empty();
  char state = text[paren + 2];
  return state != 'Z' && state != 'X';
}

std::string process_cmdline(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (char& c : text) {
    if (c == '\0') c = ' ';
  }
  return text;
}

}  // namespace sweep
