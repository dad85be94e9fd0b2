#include "orchestrator/run/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sweep {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

Result<std::unique_ptr<RunLock>> RunLock::acquire(const std::string& path) {
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
    std::string who = read_text(path);
    std::string pid = who.substr(0, who.find(' '));
    std::string host = who.find(' ') == std::string::npos ? "?" : who.substr(who.find(' ') + 1);
    return make_error(ErrorKind::kConflict,
                      "this sweep is already being run by process " + pid + " on " + host +
                          " (lock " + path + ")",
                      "wait for it, or stop it with `kill -INT " + pid + "` or `sweep cancel`");
  }
  std::string text = std::to_string(::getpid()) + " " + host_name() + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) < 0) {
    ::close(fd);
    return make_error(ErrorKind::kIo,
                      "cannot write lock file " + path + ": " + std::strerror(errno));
  }
  return std::unique_ptr<RunLock>(new RunLock(fd, path));
}

std::string RunLock::holder(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  if (!held) ::flock(fd, LOCK_UN);
  ::close(fd);
  return held ? read_text(path) : "";
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
