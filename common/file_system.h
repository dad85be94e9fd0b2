// One door for every file the worker and the orchestrator write (checkpoints, events, job
// files, reports, pid and request files), as LevelDB's Env: the writers call the operations
// below, which run on a small set of primitives (open, write, sync, close, rename, mkdir,
// remove). The process uses one FileSystem (file_system()); a test installs a
// FaultyFileSystem to fail any primitive call with ENOSPC, EIO, a short write, a failed fsync or
// a failed rename, and checks that nothing half-written is ever read back as valid.
//
// Errors are FileError (a Failure of kind kIo) naming the operation, the path and the cause
// (strerror); a full disk (ENOSPC, EDQUOT) is told apart by disk_full().
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/failure.h"

namespace sweep {

// True for the errno values that mean "no space left": ENOSPC and EDQUOT.
bool is_disk_full_errno(int error_number);

// A failed file-system call: "PATH: cannot OP: CAUSE".
class FileError : public Failure {
 public:
  FileError(const std::string& op, const std::string& path, int error_number);
  int error_number() const { return errno_; }
  const std::string& path() const { return path_; }
  bool disk_full() const { return is_disk_full_errno(errno_); }

 private:
  std::string path_;
  int errno_;
};

// True when `e` is a full disk: a FileError with ENOSPC/EDQUOT, a std::filesystem error with
// that code, or any exception whose message carries strerror(ENOSPC).
bool is_disk_full(const std::exception& e);

// The primitives. Each returns 0 or an errno value; the operations below turn errors into
// FileError. Implementations are thread-safe.
class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual int open(const std::string& path, int flags, int* fd) = 0;
  // One write(2); *written may be short.
  virtual int write(int fd, const std::string& path, const char* data, size_t size,
                    size_t* written) = 0;
  virtual int sync(int fd, const std::string& path) = 0;
  virtual int close(int fd, const std::string& path) = 0;
  virtual int truncate(int fd, const std::string& path, off_t size) = 0;
  virtual int rename(const std::string& from, const std::string& to) = 0;
  virtual int make_dir(const std::string& path) = 0;  // EEXIST when it exists
  virtual int remove(const std::string& path) = 0;    // a file or an empty directory
  virtual int sync_dir(const std::string& dir) = 0;
};

// The system calls themselves.
class PosixFileSystem : public FileSystem {
 public:
  int open(const std::string& path, int flags, int* fd) override;
  int write(int fd, const std::string& path, const char* data, size_t size,
            size_t* written) override;
  int sync(int fd, const std::string& path) override;
  int close(int fd, const std::string& path) override;
  int truncate(int fd, const std::string& path, off_t size) override;
  int rename(const std::string& from, const std::string& to) override;
  int make_dir(const std::string& path) override;
  int remove(const std::string& path) override;
  int sync_dir(const std::string& dir) override;
};

// The process's file system: a PosixFileSystem unless a test installed another.
FileSystem& file_system();
// Installs `fs` for the whole process (not owned; nullptr restores the POSIX one). For tests and
// the worker's fault-injection hook; call while no other thread writes files.
void set_file_system(FileSystem* fs);

// --- Operations (throw FileError) ----------------------------------------------------------

// Replaces `path` with `data` whole: a temp file beside it, write, fsync, rename over `path`,
// fsync of the directory. On any failure `path` keeps its old content (or stays absent) and the
// temp file is removed.
void write_file_atomic(const std::string& path, std::string_view data);
// The same for a file made of `pieces` in order (a safetensors header and its tensors), without
// copying them into one buffer.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces);
// Appends `data` (one events line) to `path`, creating it, and hands it to the OS. On failure
// the file is cut back to its size before the call, so no partial line stays behind.
void append_to_file(const std::string& path, std::string_view data);
// mkdir -p.
void create_directories(const std::string& path);
// rename(2) of a file or a directory, then fsync of the target's directory.
void rename_path(const std::string& from, const std::string& to);
// rm -r; a missing path is not an error.
void remove_all(const std::string& path);

// --- Fault injection (tests) ---------------------------------------------------------------

// Which primitive calls fail, and how.
struct FaultRule {
  enum class Op { kAny, kOpen, kWrite, kSync, kRename, kMakeDir, kRemove };
  Op op = Op::kAny;
  std::string path_part;     // only calls on a path containing this ("" = every path)
  int nth = 1;               // the nth matching call fails; 0 = every matching call
  int error = ENOSPC;        // the errno injected
  bool short_write = false;  // a write stores half its bytes, then the next write fails
};

// Parses "KIND:PATH_PART:N" (the worker's SWEEP_FAULT_INJECT testing hook): KIND is enospc,
// eio (any call), short (a short write, then ENOSPC), fsync (a failed fsync, EIO) or rename (a
// failed rename, EIO); PATH_PART may be empty; N = 0 fails every matching call. Throws Failure
// (kUser) naming the part at fault.
FaultRule parse_fault_rule(const std::string& spec);

// Passes every call to `base` except those `rule` picks, which fail with its errno.
class FaultyFileSystem : public FileSystem {
 public:
  FaultyFileSystem(FileSystem& base, FaultRule rule) : base_(base), rule_(std::move(rule)) {}
  int matching_calls() const { return calls_; }  // calls the rule matched so far
  int faults() const { return faults_; }         // calls failed so far

  int open(const std::string& path, int flags, int* fd) override;
  int write(int fd, const std::string& path, const char* data, size_t size,
            size_t* written) override;
  int sync(int fd, const std::string& path) override;
  int close(int fd, const std::string& path) override;
  int truncate(int fd, const std::string& path, off_t size) override;
  int rename(const std::string& from, const std::string& to) override;
  int make_dir(const std::string& path) override;
  int remove(const std::string& path) override;
  int sync_dir(const std::string& dir) override;

 private:
  // The errno to inject for this call, or 0.
  int inject(FaultRule::Op op, const std::string& path);

  FileSystem& base_;
  const FaultRule rule_;
  std::mutex mu_;
  int calls_ = 0;
  int faults_ = 0;
  bool fail_next_write_ = false;  // after a short write
};

}  // namespace sweep
