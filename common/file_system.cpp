#include "common/file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <vector>

namespace sweep {
namespace stdfs = std::filesystem;

bool is_disk_full_errno(int error_number) {
  return error_number == ENOSPC || error_number == EDQUOT;
}

FileError::FileError(const std::string& op, const std::string& path, int error_number)
    : Failure(make_error(
          ErrorKind::kIo, path + ": cannot " + op + ": " + std::strerror(error_number),
          is_disk_full_errno(error_number) ? "free space on that file system, then run again "
                                             "(`sweep retry SWEEP` for a failed job)"
                                           : "")),
      path_(path),
      errno_(error_number) {}

bool is_disk_full(const std::exception& e) {
  if (const auto* f = dynamic_cast<const FileError*>(&e)) return f->disk_full();
  if (const auto* f = dynamic_cast<const stdfs::filesystem_error*>(&e))
    return f->code().category() == std::generic_category() && is_disk_full_errno(f->code().value());
  return std::strstr(e.what(), std::strerror(ENOSPC)) != nullptr ||
         std::strstr(e.what(), std::strerror(EDQUOT)) != nullptr;
}

// --- PosixFileSystem -----------------------------------------------------------------------

int PosixFileSystem::open(const std::string& path, int flags, int* fd) {
  do {
    *fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  } while (*fd < 0 && errno == EINTR);
  return *fd < 0 ? errno : 0;
}

int PosixFileSystem::write(int fd, const std::string&, const char* data, size_t size,
                           size_t* written) {
  ssize_t n;
  do {
    n = ::write(fd, data, size);
  } while (n < 0 && errno == EINTR);
  *written = n < 0 ? 0 : static_cast<size_t>(n);
  return n < 0 ? errno : 0;
}

int PosixFileSystem::sync(int fd, const std::string&) { return ::fsync(fd) == 0 ? 0 : errno; }

int PosixFileSystem::close(int fd, const std::string&) { return ::close(fd) == 0 ? 0 : errno; }

int PosixFileSystem::truncate(int fd, const std::string&, off_t size) {
  return ::ftruncate(fd, size) == 0 ? 0 : errno;
}

int PosixFileSystem::rename(const std::string& from, const std::string& to) {
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

int PosixFileSystem::make_dir(const std::string& path) {
  return ::mkdir(path.c_str(), 0755) == 0 ? 0 : errno;
}

int PosixFileSystem::remove(const std::string& path) {
  return ::remove(path.c_str()) == 0 ? 0 : errno;
}

int PosixFileSystem::sync_dir(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  // Some file systems (and /proc-like ones) cannot sync a directory; the rename stands anyway.
  return err == EINVAL || err == ENOTSUP ? 0 : err;
}

namespace {

std::atomic<FileSystem*> installed{nullptr};

std::string parent_of(const std::string& path) {
  std::string parent = stdfs::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// Writes all of `data`, calling write until done; the errno of the first failure, or 0.
int write_all(FileSystem& fs, int fd, const std::string& path, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    size_t n = 0;
    if (int err = fs.write(fd, path, data.data() + done, data.size() - done, &n)) return err;
    if (n == 0) return EIO;  // no progress without an error: never loop forever
    done += n;
  }
  return 0;
}

}  // namespace

FileSystem& file_system() {
  static PosixFileSystem posix;
  FileSystem* fs = installed.load();
  return fs ? *fs : posix;
}

void set_file_system(FileSystem* fs) { installed.store(fs); }

// --- Operations ----------------------------------------------------------------------------

void write_file_atomic(const std::string& path, std::string_view data) {
  write_file_atomic(path, std::vector<std::string_view>{data});
}

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces) {
  FileSystem& fs = file_system();
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = -1;
  if (int err = fs.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, &fd))
    throw FileError("create", tmp, err);
  auto abandon = [&](const char* op, int err) {
    if (fd >= 0) fs.close(fd, tmp);
    ::unlink(tmp.c_str());  // cleanup: not a fault point, a failure here changes nothing
    throw FileError(op, tmp, err);
  };
  for (std::string_view piece : pieces)
    if (int err = write_all(fs, fd, tmp, piece)) abandon("write", err);
  if (int err = fs.sync(fd, tmp)) abandon("sync", err);
  int err = fs.close(fd, tmp);
  fd = -1;
  if (err) abandon("close", err);
  if (int rename_err = fs.rename(tmp, path)) {
    ::unlink(tmp.c_str());
    throw FileError("rename " + tmp + " to", path, rename_err);
  }
  if (int sync_err = fs.sync_dir(parent_of(path)))
    throw FileError("sync", parent_of(path), sync_err);
}

void append_to_file(const std::string& path, std::string_view data) {
  FileSystem& fs = file_system();
  int fd = -1;
  if (int err = fs.open(path, O_WRONLY | O_CREAT | O_APPEND, &fd))
    throw FileError("open", path, err);
  struct stat st {};
  const off_t before = ::fstat(fd, &st) == 0 ? st.st_size : -1;
  if (int err = write_all(fs, fd, path, data)) {
    // Cut a partial line off so that readers never see it (shrinking needs no space).
    if (before >= 0) fs.truncate(fd, path, before);
    fs.close(fd, path);
    throw FileError("append to", path, err);
  }
  if (int err = fs.close(fd, path)) throw FileError("close", path, err);
}

void create_directories(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  if (stdfs::is_directory(path, ec)) return;
  std::vector<std::string> missing;  // deepest first
  for (stdfs::path p = stdfs::path(path).lexically_normal(); !p.empty() && p != p.root_path();
       p = p.parent_path()) {
    if (p.filename().empty()) continue;  // a trailing slash
    if (stdfs::is_directory(p, ec)) break;
    missing.push_back(p.string());
  }
  FileSystem& fs = file_system();
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    int err = fs.make_dir(*it);
    if (err == EEXIST && stdfs::is_directory(*it, ec)) continue;
    if (err) throw FileError("create directory", *it, err);
  }
}

void rename_path(const std::string& from, const std::string& to) {
  FileSystem& fs = file_system();
  if (int err = fs.rename(from, to)) throw FileError("rename " + from + " to", to, err);
  if (int err = fs.sync_dir(parent_of(to))) throw FileError("sync", parent_of(to), err);
}

void remove_all(const std::string& path) {
  std::error_code ec;
  auto status = stdfs::symlink_status(path, ec);
  if (ec || !stdfs::exists(status)) return;
  if (stdfs::is_directory(status)) {
    std::vector<std::string> children;
    for (const auto& entry : stdfs::directory_iterator(path, ec))
      children.push_back(entry.path().string());
    if (ec) throw FileError("list", path, ec.value());
    for (const std::string& child : children) remove_all(child);
  }
  int err = file_system().remove(path);
  if (err && err != ENOENT) throw FileError("remove", path, err);
}

// --- Fault injection -----------------------------------------------------------------------

FaultRule parse_fault_rule(const std::string& spec) {
  auto bad = [&](const std::string& why) {
    fail(ErrorKind::kUser, "fault rule '" + spec + "': " + why,
         "write KIND:PATH_PART:N with KIND enospc, eio, short, fsync or rename");
  };
  size_t a = spec.find(':'), b = spec.rfind(':');
  if (a == std::string::npos || a == b) bad("expected KIND:PATH_PART:N");
  const std::string kind = spec.substr(0, a);
  FaultRule rule;
  rule.path_part = spec.substr(a + 1, b - a - 1);
  try {
    size_t used = 0;
    rule.nth = std::stoi(spec.substr(b + 1), &used);
    if (used != spec.size() - b - 1 || rule.nth < 0) bad("N must be a whole number >= 0");
  } catch (const std::logic_error&) {
    bad("N must be a whole number >= 0");
  }
  if (kind == "enospc") {
    rule.error = ENOSPC;
  } else if (kind == "eio") {
    rule.error = EIO;
  } else if (kind == "short") {
    rule.op = FaultRule::Op::kWrite;
    rule.short_write = true;
  } else if (kind == "fsync") {
    rule.op = FaultRule::Op::kSync;
    rule.error = EIO;
  } else if (kind == "rename") {
    rule.op = FaultRule::Op::kRename;
    rule.error = EIO;
  } else {
    bad("unknown kind '" + kind + "'");
  }
  return rule;
}

int FaultyFileSystem::inject(FaultRule::Op op, const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rule_.op != FaultRule::Op::kAny && rule_.op != op) return 0;
  if (!rule_.path_part.empty() && path.find(rule_.path_part) == std::string::npos) return 0;
  ++calls_;
  if (rule_.nth != 0 && calls_ != rule_.nth) return 0;
  ++faults_;
  return rule_.error;
}

int FaultyFileSystem::open(const std::string& path, int flags, int* fd) {
  if (int err = inject(FaultRule::Op::kOpen, path)) return err;
  return base_.open(path, flags, fd);
}

int FaultyFileSystem::write(int fd, const std::string& path, const char* data, size_t size,
                            size_t* written) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_next_write_) {
      fail_next_write_ = false;
      *written = 0;
      return ENOSPC;
    }
  }
  if (int err = inject(FaultRule::Op::kWrite, path)) {
    if (!rule_.short_write || size < 2) {
      *written = 0;
      return err;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      fail_next_write_ = true;
    }
    return base_.write(fd, path, data, size / 2, written);
  }
  return base_.write(fd, path, data, size, written);
}

int FaultyFileSystem::sync(int fd, const std::string& path) {
  if (int err = inject(FaultRule::Op::kSync, path)) return err;
  return base_.sync(fd, path);
}

int FaultyFileSystem::close(int fd, const std::string& path) { return base_.close(fd, path); }

int FaultyFileSystem::truncate(int fd, const std::string& path, off_t size) {
  return base_.truncate(fd, path, size);
}

int FaultyFileSystem::rename(const std::string& from, const std::string& to) {
  if (int err = inject(FaultRule::Op::kRename, to)) return err;
  return base_.rename(from, to);
}

int FaultyFileSystem::make_dir(const std::string& path) {
  if (int err = inject(FaultRule::Op::kMakeDir, path)) return err;
  return base_.make_dir(path);
}

int FaultyFileSystem::remove(const std::string& path) {
  if (int err = inject(FaultRule::Op::kRemove, path)) return err;
  return base_.remove(path);
}

int FaultyFileSystem::sync_dir(const std::string& dir) {
  if (int err = inject(FaultRule::Op::kSync, dir)) return err;
  return base_.sync_dir(dir);
}

}  // namespace sweep
