#include "orchestrator/run/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>

#include "common/failure.h"

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace sweep {

namespace {

std::atomic<int> g_exit_fd{-1};
struct sigaction g_previous_sigchld {};

// A worker ended: wake the loop at once instead of at its next tick (it reaps with waitpid).
void on_child_signal(int) {
  int fd = g_exit_fd.load();
  if (fd >= 0) {
    char c = 'c';
    ssize_t n = ::write(fd, &c, 1);
    (void)n;
  }
}

Result<std::string> find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0) {
      return make_error(ErrorKind::kNotFound,
                        "worker program " + name + " is missing or not executable",
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

// The NUL-separated argv of a live process joined with spaces; empty when unreadable.
// A file of /proc/<pid>/ ("" once the process is gone). Read with read(2): a process that exits
// between open and read makes the read fail with ESRCH, which std::ifstream turns into an
// exception.
std::string read_proc_file(int64_t pid, const char* name) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

std::string process_cmdline(int64_t pid) {
  std::string text = read_proc_file(pid, "cmdline");
  for (char& c : text) {
    if (c == '\0') c = ' ';
  }
  return text;
}

}  // namespace

LocalExecutor::~LocalExecutor() {
  if (handler_installed_) notify_exits(-1);
}

Result<ProcessHandle> LocalExecutor::launch(const LaunchRequest& request) {
  if (request.argv.empty()) return make_error(ErrorKind::kInternal, "empty worker argv");
  auto exe = find_executable(request.argv[0]);
  if (!exe.ok()) return exe.error();
  std::vector<std::string> args(request.argv.begin() + 1, request.argv.end());
  bp::environment env = boost::this_process::environment();
  for (const auto& [key, value] : request.env) env[key] = value;
  auto handle = capture([&] {
    // Own process group: the terminal's SIGINT goes to the orchestrator only.
    bp::child child(
        bp::exe = *exe, bp::args = args, env,
        bp::start_dir = request.working_dir.empty() ? "." : request.working_dir,
        bp::std_in<bp::null, bp::std_out> request.stdout_path, bp::std_err > request.stderr_path,
        bp::extend::on_exec_setup = [](auto&) { ::setpgid(0, 0); });
    ProcessHandle started{child.id(), true, ""};
    // We reap with waitpid ourselves; a detached bp::child never kills the worker on destruction.
    child.detach();
    return started;
  });
  if (!handle.ok()) {
    // fork/exec or a redirection failed: the system's fault, not the job's.
    return make_error(ErrorKind::kIo,
                      "could not start worker " + *exe + ": " + handle.error().message,
                      "check that " + request.working_dir + " is writable");
  }
  return *handle;
}

PollResult LocalExecutor::poll(const ProcessHandle& handle) {
  if (!handle.child) {
    return process_alive(handle.pid) ? PollResult{} : PollResult::vanished();
  }
  int status = 0;
  pid_t r = ::waitpid(static_cast<pid_t>(handle.pid), &status, WNOHANG);
  if (r == 0) return PollResult{};
  if (r < 0) return PollResult::vanished();  // not our child any more
  if (WIFEXITED(status)) return PollResult::exited(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return PollResult::exited(128 + WTERMSIG(status));
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

std::vector<int64_t> LocalExecutor::find_workers(const std::string& job_json) {
  std::vector<int64_t> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    int64_t pid = std::atoll(name.c_str());
    if (process_alive(pid) && process_cmdline(pid).find(job_json) != std::string::npos) {
      pids.push_back(pid);
    }
  }
  return pids;
}

bool LocalExecutor::alive(int64_t pid) { return process_alive(pid); }

void LocalExecutor::notify_exits(int fd) {
  g_exit_fd = fd;
  if (fd >= 0 && !handler_installed_) {
    struct sigaction sa {};
    sa.sa_handler = on_child_signal;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGCHLD, &sa, &g_previous_sigchld);
    handler_installed_ = true;
  } else if (fd < 0 && handler_installed_) {
    ::sigaction(SIGCHLD, &g_previous_sigchld, nullptr);
    handler_installed_ = false;
  }
}

bool process_alive(int64_t pid) {
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  std::string text = read_proc_file(pid, "stat");
  auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return !text.empty();
  char state = text[paren + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace sweep
