#include "orchestrator/run/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace sweep {

namespace {

// Line `n` (0-based) of the lock file: 0 is "pid host", 1 the holder's run directory.
std::string read_line(const std::string& path, int n) {
  std::ifstream in(path);
  std::string line;
  for (int i = 0; i <= n; ++i) {
    if (!std::getline(in, line)) return "";
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

bool held_by_another(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  if (!held) ::flock(fd, LOCK_UN);
  ::close(fd);
  return held;
}

}  // namespace

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

std::string sweep_db_lock_path(const std::string& db_path, const std::string& sweep_name) {
  return db_path + "-" + sweep_name + ".lock";
}

Result<std::unique_ptr<RunLock>> RunLock::acquire(const std::string& path, const std::string& what,
                                                  const std::string& sweep_dir) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  // O_CLOEXEC: a worker must never inherit the lock, or it would outlive a killed orchestrator.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error(ErrorKind::kIo,
                      "cannot open lock file " + path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    std::string who = read_line(path, 0);
    std::string pid = who.substr(0, who.find(' '));
    std::string host = who.find(' ') == std::string::npos ? "?" : who.substr(who.find(' ') + 1);
    std::string dir = read_line(path, 1);
    return make_error(ErrorKind::kConflict,
                      what + " is already being run by process " + pid + " on " + host +
                          (dir.empty() ? "" : " in " + dir) + " (lock " + path + ")",
                      "wait for it, or stop it with `kill -INT " + pid + "` or `sweep cancel`");
  }
  std::string text = std::to_string(::getpid()) + " " + host_name() + "\n" + sweep_dir + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) < 0) {
    ::close(fd);
    return make_error(ErrorKind::kIo,
                      "cannot write lock file " + path + ": " + std::strerror(errno));
  }
  return std::unique_ptr<RunLock>(new RunLock(fd, path));
}

std::string RunLock::holder(const std::string& path) {
  return held_by_another(path) ? read_line(path, 0) : "";
}

std::string RunLock::holder_sweep_dir(const std::string& path) {
  return held_by_another(path) ? read_line(path, 1) : "";
}

long RunLock::holder_pid(const std::string& path) {
  std::string who = holder(path);
  return who.empty() ? 0 : std::atol(who.c_str());
}

RunLock::~RunLock() {
  // Empty the file first: a reader that sees no holder text knows the run ended.
  if (::ftruncate(fd_, 0) != 0) {
  }
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

}  // namespace sweep
