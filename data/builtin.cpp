#include "data/builtin.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/failure.h"
#include "data/shapes/shapes_dataset.h"

namespace fs = std::filesystem;

namespace sweep::data {
namespace {

constexpr const char* kPrefix = "builtin:";
constexpr const char* kShapesRef = "builtin:shapes";
constexpr const char* kShapesDir = "shapes-v2";  // bump when the generator's output changes
constexpr const char* kTinyLlavaDir = "tiny-llava-v2";
constexpr const char* kCompleteMarker = ".complete";
const char* const kShapesParts[] = {"images", "captions_train.json", "vqa_train.json",
                                    "vqa_val.json", "corpus.txt"};

std::string home_dir() {
  if (const char* home = std::getenv("HOME"); home && *home) return home;
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) return pw->pw_dir;
  fail(ErrorKind::kUser,
       "builtin cache: neither $HOME nor a passwd entry names a home "
       "directory; set SWEEP_CACHE to a writable directory");
}

bool is_complete(const std::string& dir) {
  std::error_code ec;
  return fs::exists(fs::path(dir) / kCompleteMarker, ec);
}

// An exclusive flock held for the object's lifetime; the kernel drops it if the process dies, so
// a crashed maker never leaves a stale lock. The lock file itself is never removed: removing it
// would let a late waiter lock an unlinked inode while a newcomer locks a fresh one.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) : path_(dir + ".lock") {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot open");
    if (lock(LOCK_EX | LOCK_NB) == 0) return;
    if (errno != EWOULDBLOCK) fail("cannot lock");
    std::fprintf(stderr, "waiting for another process making %s\n", dir.c_str());
    if (lock(LOCK_EX) != 0) fail("cannot lock");
  }
  ~DirLock() { ::close(fd_); }  // closing the descriptor releases the lock
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int lock(int op) {
    int rc;
    do {
      rc = ::flock(fd_, op);
    } while (rc != 0 && errno == EINTR);
    return rc;
  }
  [[noreturn]] void fail(const char* what) {
    const std::string msg = std::string("builtin cache: ") + what + " " + path_ + ": " +
                            std::strerror(errno) + " (is the cache directory writable?)";
    if (fd_ >= 0) ::close(fd_);
    sweep::fail(ErrorKind::kIo, msg);
  }

  std::string path_;
  int fd_ = -1;
};

void write_marker(const std::string& dir) {
  const std::string path = (fs::path(dir) / kCompleteMarker).string();
  std::ofstream out(path);
  out << "complete\n";
  out.close();
  if (!out) fail(ErrorKind::kIo, "builtin cache: cannot write " + path);
}

// Under the lock: clears what a crashed maker or a foreign incomplete directory left behind.
void clear_leftovers(const std::string& dir, const std::string& tmp) {
  std::error_code ec;
  fs::remove_all(tmp, ec);
  if (ec)
    fail(ErrorKind::kIo, "builtin cache: cannot remove leftover " + tmp + ": " + ec.message());
  fs::remove_all(dir, ec);
  if (ec)
    fail(ErrorKind::kIo, "builtin cache: cannot remove incomplete " + dir + ": " + ec.message());
}

std::string known_data_refs() {
  std::string out = kShapesRef;
  for (const char* part : kShapesParts) out += std::string(", ") + kShapesRef + "/" + part;
  return out;
}

}  // namespace

std::string cache_dir() {
  const char* env = std::getenv("SWEEP_CACHE");
  const std::string dir = (env && *env) ? env : home_dir() + "/.cache/llava-sweep";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    fail(ErrorKind::kIo, "builtin cache: cannot create " + dir + ": " + ec.message() +
                             " (set SWEEP_CACHE to a writable directory)");
  }
  return dir;
}

bool is_builtin(const std::string& ref) { return ref.rfind(kPrefix, 0) == 0; }

void make_once(const std::string& dir_arg, const std::function<void(const std::string&)>& make) {
  // "x/" and "x" must share one lock file and one temp dir.
  std::string dir = fs::path(dir_arg).lexically_normal().string();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (is_complete(dir)) return;
  const fs::path parent = fs::path(dir).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  DirLock lock(dir);
  if (is_complete(dir)) return;  // made by the process we waited for

  const std::string tmp = dir + ".tmp";  // one maker at a time, so one fixed name suffices
  clear_leftovers(dir, tmp);
  if (!fs::create_directory(tmp, ec)) {
    fail(ErrorKind::kIo, "builtin cache: cannot create " + tmp + ": " + ec.message());
  }
  try {
    make(tmp);
    write_marker(tmp);
    fs::rename(tmp, dir);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

std::string resolve_builtin_data(const std::string& ref) {
  const std::string root = cache_dir() + "/" + kShapesDir;
  std::string path;
  if (ref == kShapesRef) path = root;
  for (const char* part : kShapesParts) {
    if (ref == std::string(kShapesRef) + "/" + part) path = root + "/" + part;
  }
  if (path.empty()) {
    const std::string hint = ref == kTinyLlavaRef ? " (" + ref + " is a model, not data)" : "";
    fail(ErrorKind::kUser,
         "unknown built-in data '" + ref + "'" + hint + "; known: " + known_data_refs());
  }
  make_once(root, [](const std::string& tmp) { write_shapes_dataset(tmp, ShapesOptions{}); });
  return path;
}

std::string builtin_model_dir(const std::string& ref) {
  if (ref != kTinyLlavaRef) {
    fail(ErrorKind::kUser, "unknown built-in model '" + ref + "'; known: " + kTinyLlavaRef);
  }
  return cache_dir() + "/" + kTinyLlavaDir;
}

}  // namespace sweep::data
