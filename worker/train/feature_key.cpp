#include "worker/train/feature_key.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "data/image.h"

namespace sweep::train {

uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t fnv1a(const std::string& s, uint64_t h) { return fnv1a(s.data(), s.size(), h); }

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

ImageIdentity identify_image(const std::string& path) {
  ImageIdentity id;
  id.path = std::filesystem::absolute(path).lexically_normal().string();
  struct stat st {};
  if (::stat(id.path.c_str(), &st) != 0)
    throw std::runtime_error("cannot stat image " + id.path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw std::runtime_error("image " + id.path + " is not a file");
  id.bytes = static_cast<int64_t>(st.st_size);
  id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

std::string PreprocessKey::describe() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "size=%d;aspect=%s;mean=%.9g,%.9g,%.9g;std=%.9g,%.9g,%.9g",
                image_size, pad_to_square ? "pad" : "square", data::kClipMean[0],
                data::kClipMean[1], data::kClipMean[2], data::kClipStd[0], data::kClipStd[1],
                data::kClipStd[2]);
  return buf;
}

std::string FeatureKey::canonical() const {
  return "vision=" + fingerprint + ";image=" + image.path +
         ";bytes=" + std::to_string(image.bytes) + ";mtime_ns=" + std::to_string(image.mtime_ns) +
         ";" + preprocess.describe() + ";dtype=" + dtype + ";device=" + device;
}

std::string FeatureKey::file_name() const { return hex64(fnv1a(canonical())) + ".vfeat"; }

}  // namespace sweep::train
