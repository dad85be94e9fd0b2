// The safetensors file format (reference §8), LibTorch-free: a validating, mmap-based reader and
// a writer. Every malformed-file case is a SafetensorsError naming the file (and tensor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace sweep::model {

class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// "F32" -> kF32 ...; throws SafetensorsError for an unknown name.
DType dtype_from_name(const std::string& name);
const char* dtype_name(DType d);
size_t dtype_size(DType d);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // offsets in the data buffer, end exclusive
  uint64_t numel() const;
};

// A read-only memory map of one .safetensors file. Tensors point into the map, so they are valid
// while the object lives. The header is validated completely before anything is exposed.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws SafetensorsError
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in data-offset order
  const TensorInfo& info(const std::string& name) const;               // throws if absent
  bool contains(const std::string& name) const;
  const uint8_t* data(const TensorInfo& t) const { return data_ + t.begin; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Parses and validates a header (the JSON text) against a data buffer of `buffer_size` bytes.
// Exposed for tests; `path` only names the file in errors.
std::vector<TensorInfo> parse_safetensors_header(const std::string& header, uint64_t buffer_size,
                                                 const std::string& path,
                                                 std::map<std::string, std::string>* metadata);

struct TensorBlob {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // numel * dtype_size bytes, little-endian row-major
};
// Writes tensors in the given order, header padded with spaces to 8-byte alignment, with
// `metadata` as __metadata__ (omitted when empty). Writes path + ".tmp" and renames it.
void write_safetensors(const std::string& path, const std::vector<TensorBlob>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace sweep::model
