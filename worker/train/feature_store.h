// The disk layer of the vision-feature cache: one file per FeatureKey in a directory that the
// jobs of a sweep share. LibTorch-free: an entry is a dtype code, a shape and the raw bytes.
//
// Concurrency: entries are written to a temp file in the directory and renamed into place, so a
// reader in another process sees a whole entry or none. Two jobs computing the same entry both
// write it; the last rename wins and both contents are valid.
// Integrity: a file that is short, has another key (a name collision), a bad header or a checksum
// that does not match is a miss; the caller recomputes and put() replaces it.
// Bound: put() keeps the directory's entries under `max_bytes` (approximately: other processes'
// writes are seen at the next scan) by deleting the least recently used ones; get() touches an
// entry's mtime on a hit, so mtime order is use order.
// Errors: get() never throws; put() returns false (and leaves no temp file) when it cannot write.
// Not thread-safe: one thread per FeatureStore.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "worker/train/feature_key.h"

namespace sweep::train {

struct StoredFeatures {
  int32_t dtype = 0;  // the writer's dtype code (c10::ScalarType for the worker)
  std::vector<int64_t> shape;
  std::string bytes;  // row-major payload, product(shape) * element size bytes
};

class FeatureStore {
 public:
  static constexpr uint64_t kDefaultMaxBytes = uint64_t{1} << 30;  // 1 GiB

  // Creates `dir` if needed (throws std::runtime_error naming it when it cannot).
  FeatureStore(std::string dir, uint64_t max_bytes);

  std::optional<StoredFeatures> get(const FeatureKey& key);
  bool put(const FeatureKey& key, const StoredFeatures& features);

  // The bytes of the entries in the directory (a scan).
  uint64_t disk_bytes() const;
  const std::string& dir() const { return dir_; }
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  // Deletes the least recently used entries until the directory holds at most `target` bytes,
  // and temp files left by writers that died. Returns the bytes left.
  uint64_t evict_to(uint64_t target);

  std::string dir_;
  uint64_t max_bytes_;
  uint64_t written_since_scan_ = 0;
  uint64_t bytes_at_scan_ = 0;
  std::string writer_id_;  // in this store's temp file names
  uint64_t temp_counter_ = 0;
};

// The file format, exposed for tests: magic, key, dtype, shape, payload size, checksum, payload.
std::string encode_entry(const std::string& canonical_key, const StoredFeatures& f);
// nullopt when `file` is not a whole, intact entry for `canonical_key`.
std::optional<StoredFeatures> decode_entry(const std::string& file,
                                           const std::string& canonical_key);

}  // namespace sweep::train
