#include "worker/train/feature_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <system_error>

namespace sweep::train {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'L', 'S', 'V', 'F', 'E', 'A', 'T', '1'};
constexpr const char* kEntrySuffix = ".vfeat";
constexpr const char* kTempPrefix = ".tmp-";
// A temp file older than this belongs to a writer that died (a write takes milliseconds).
constexpr int64_t kStaleTempSeconds = 600;

template <typename T>
void append(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// Reads a T at `pos` and advances it; false when the file is too short.
template <typename T>
bool take(const std::string& in, size_t& pos, T* v) {
  if (in.size() - pos < sizeof(T)) return false;
  std::memcpy(v, in.data() + pos, sizeof(T));
  pos += sizeof(T);
  return true;
}

bool write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string encode_entry(const std::string& canonical_key, const StoredFeatures& f) {
  std::string out(kMagic, sizeof kMagic);
  append<uint32_t>(out, static_cast<uint32_t>(canonical_key.size()));
  out += canonical_key;
  append<int32_t>(out, f.dtype);
  append<uint32_t>(out, static_cast<uint32_t>(f.shape.size()));
  for (int64_t d : f.shape) append<int64_t>(out, d);
  append<uint64_t>(out, f.bytes.size());
  append<uint64_t>(out, fnv1a(f.bytes));
  out += f.bytes;
  return out;
}

std::optional<StoredFeatures> decode_entry(const std::string& file,
                                           const std::string& canonical_key) {
  if (file.size() < sizeof kMagic || std::memcmp(file.data(), kMagic, sizeof kMagic) != 0)
    return std::nullopt;
  size_t pos = sizeof kMagic;
  uint32_t key_len = 0, ndim = 0;
  if (!take(file, pos, &key_len) || file.size() - pos < key_len) return std::nullopt;
  if (file.compare(pos, key_len, canonical_key) != 0 || key_len != canonical_key.size())
    return std::nullopt;
  pos += key_len;
  StoredFeatures f;
  if (!take(file, pos, &f.dtype) || !take(file, pos, &ndim) || ndim > 16) return std::nullopt;
  for (uint32_t i = 0; i < ndim; ++i) {
    int64_t d = 0;
    if (!take(file, pos, &d) || d < 0) return std::nullopt;
    f.shape.push_back(d);
  }
  uint64_t size = 0, checksum = 0;
  if (!take(file, pos, &size) || !take(file, pos, &checksum)) return std::nullopt;
  if (file.size() - pos != size) return std::nullopt;
  f.bytes = file.substr(pos);
  if (fnv1a(f.bytes) != checksum) return std::nullopt;
  return f;
}

FeatureStore::FeatureStore(std::string dir, uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {
  // Unique among the writers of the directory: jobs on other hosts of a shared file system may
  // have the same pid, and one process may hold several stores.
  std::random_device random;
  writer_id_ = std::to_string(::getpid()) + "-" +
               hex64((uint64_t{random()} << 32) ^ random() ^ reinterpret_cast<uintptr_t>(this));
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_))
    throw std::runtime_error("cannot create the feature cache directory " + dir_ + ": " +
                             (ec ? ec.message() : "not a directory") +
                             " (fix its permissions, or unset feature_cache in job.json)");
  bytes_at_scan_ = evict_to(max_bytes_);
}

std::optional<StoredFeatures> FeatureStore::get(const FeatureKey& key) {
  const std::string path = dir_ + "/" + key.file_name();
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::optional<StoredFeatures> f = decode_entry(file, key.canonical());
  if (f) ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // now: most recently used
  return f;
}

bool FeatureStore::put(const FeatureKey& key, const StoredFeatures& features) {
  const std::string name = key.file_name();
  const std::string tmp =
      dir_ + "/" + kTempPrefix + writer_id_ + "-" + std::to_string(temp_counter_++) + "-" + name;
  const std::string text = encode_entry(key.canonical(), features);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool written = write_all(fd, text);
  // No fsync: after a crash a torn or empty entry is a miss, recomputed on the next lookup.
  if (::close(fd) != 0 || !written || ::rename(tmp.c_str(), (dir_ + "/" + name).c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  written_since_scan_ += text.size();
  if (bytes_at_scan_ + written_since_scan_ > max_bytes_) {
    // Down to 90 % so that the next scan is a tenth of the cap of writes away, not the next put.
    bytes_at_scan_ = evict_to(max_bytes_ / 10 * 9);
    written_since_scan_ = 0;
  }
  return true;
}

uint64_t FeatureStore::disk_bytes() const {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::error_code size_ec;
    const auto size = e.file_size(size_ec);
    const std::string name = e.path().filename().string();
    if (!size_ec && name.rfind(kTempPrefix, 0) != 0 && ends_with(name, kEntrySuffix)) total += size;
  }
  return total;
}

uint64_t FeatureStore::evict_to(uint64_t target) {
  struct Entry {
    int64_t mtime_ns;
    uint64_t bytes;
    std::string path;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string path = e.path().string(), name = e.path().filename().string();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (name.rfind(kTempPrefix, 0) == 0) {
      if (now - st.st_mtim.tv_sec > kStaleTempSeconds) ::unlink(path.c_str());
      continue;
    }
    if (!ends_with(name, kEntrySuffix)) continue;
    const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    entries.push_back({mtime, static_cast<uint64_t>(st.st_size), path});
    total += static_cast<uint64_t>(st.st_size);
  }
  if (total <= target) return total;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.mtime_ns < b.mtime_ns; });
  for (const Entry& e : entries) {
    if (total <= target) break;
    // Another job may have evicted it already; either way it no longer counts.
    ::unlink(e.path.c_str());
    total -= e.bytes;
  }
  return total;
}

}  // namespace sweep::train
