// What a cached vision feature depends on, as one canonical string: the vision tower's
// fingerprint, the image file's identity, the preprocessing, and the dtype and device the features
// were computed in. Two keys are the same entry exactly when their canonical strings are equal.
// LibTorch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sweep::train {

// 64-bit FNV-1a over `n` bytes, continuing from `h` (start with kFnvOffset). Used for the
// fingerprint of a vision tower and for entry names; not cryptographic.
constexpr uint64_t kFnvOffset = 14695981039346656037ull;
uint64_t fnv1a(const void* data, size_t n, uint64_t h = kFnvOffset);
uint64_t fnv1a(const std::string& s, uint64_t h = kFnvOffset);
// 16 lower-case hex digits.
std::string hex64(uint64_t v);

// An image file as the cache knows it: absolute path, size and modification time (nanoseconds).
// Path + size + mtime instead of a content hash: a stat per lookup instead of reading every image
// again in every job; a file rewritten in place gets a new mtime (and usually a new size), so it
// misses. Files with the same content under two paths are two entries.
struct ImageIdentity {
  std::string path;
  int64_t bytes = 0;
  int64_t mtime_ns = 0;
};
// Throws std::runtime_error naming the file when it cannot be stat'ed.
ImageIdentity identify_image(const std::string& path);

// The preprocessing that turns the image file into pixels (data/image.h clip_preprocess).
struct PreprocessKey {
  int image_size = 336;
  bool pad_to_square = true;     // image_aspect_ratio "pad"; false: "square" (centre crop)
  std::string describe() const;  // includes the CLIP mean/std the pixels are normalised with
};

struct FeatureKey {
  std::string fingerprint;  // vision_tower_fingerprint of the model (worker/train/feature_cache.h)
  ImageIdentity image;
  PreprocessKey preprocess;
  std::string dtype;   // the features' dtype, e.g. "Float", "BFloat16"
  std::string device;  // device type they were computed on: "cpu", "cuda"

  std::string canonical() const;
  // The entry's file name in the cache directory: hex64(fnv1a(canonical())) + ".vfeat".
  std::string file_name() const;
};

}  // namespace sweep::train
