// One orchestrator per sweep: an exclusive flock on runs/<sweep>/.lock, with the holder's pid and
// host written inside so that a second `sweep run` can say who holds it. The kernel drops the
// lock when the holder dies, even by kill -9, so a stale file never blocks a restart.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace sweep {

class RunLock {
 public:
  // kConflict naming the holder's pid and host when another process holds the lock.
  static Result<std::unique_ptr<RunLock>> acquire(const std::string& path);
  // The "pid host" text in the lock file, or empty when nobody holds it.
  static std::string holder(const std::string& path);
  // Pid of the holder, 0 when none.
  static long holder_pid(const std::string& path);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  RunLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

std::string host_name();

}  // namespace sweep
