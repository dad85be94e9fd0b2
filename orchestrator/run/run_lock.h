// One orchestrator per sweep: an exclusive flock on a lock file, with the holder's pid and host
// (and the holder's run directory) written inside so that a second `sweep run` can say who holds
// it. The kernel drops the lock when the holder dies, even by kill -9, so a stale file never
// blocks a restart. `sweep run` takes two: the database's lock for the sweep
// (<db>-<sweep>.lock, beside the database, whatever the runs directory) and runs/<sweep>/.lock
// (two databases must not share one sweep's run directories either).
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace sweep {

class RunLock {
 public:
  // kConflict naming the holder's pid and host when another process holds the lock; `what`
  // names the locked thing in that message. `sweep_dir` is written beside the pid and host.
  static Result<std::unique_ptr<RunLock>> acquire(const std::string& path,
                                                  const std::string& what = "this sweep",
                                                  const std::string& sweep_dir = "");
  // The "pid host" text in the lock file, or empty when nobody holds it.
  static std::string holder(const std::string& path);
  // The run directory the holder wrote (its runs/<sweep>), or empty when none or nobody holds it.
  static std::string holder_sweep_dir(const std::string& path);
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

// The database's lock for one sweep: <db>-<sweep>.lock beside the database file.
std::string sweep_db_lock_path(const std::string& db_path, const std::string& sweep_name);

}  // namespace sweep
