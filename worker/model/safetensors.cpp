#include "worker/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/file_system.h"

namespace sweep::model {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit (100 MB)

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw SafetensorsError("safetensors file " + path + ": " + what);
}

[[noreturn]] void fail_tensor(const std::string& path, const std::string& name,
                              const std::string& what) {
  fail(path, "tensor '" + name + "': " + what);
}

const std::vector<std::pair<const char*, DType>>& dtype_table() {
  static const std::vector<std::pair<const char*, DType>> table = {
      {"F64", DType::kF64}, {"F32", DType::kF32},  {"F16", DType::kF16}, {"BF16", DType::kBF16},
      {"I64", DType::kI64}, {"I32", DType::kI32},  {"I16", DType::kI16}, {"I8", DType::kI8},
      {"U8", DType::kU8},   {"BOOL", DType::kBool}};
  return table;
}

// Reads one tensor entry; every field is checked before use so a lying header cannot make us
// compute with unchecked numbers (numel overflow included).
TensorInfo parse_entry(const std::string& name, const nlohmann::json& e, const std::string& path) {
  if (!e.is_object()) fail_tensor(path, name, "entry is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!e.contains(key)) fail_tensor(path, name, std::string("missing \"") + key + "\"");
  TensorInfo t;
  t.name = name;
  if (!e["dtype"].is_string()) fail_tensor(path, name, "\"dtype\" is not a string");
  try {
    t.dtype = dtype_from_name(e["dtype"].get<std::string>());
  } catch (const SafetensorsError& err) {
    fail_tensor(path, name, err.what());
  }
  if (!e["shape"].is_array()) fail_tensor(path, name, "\"shape\" is not an array");
  for (const auto& d : e["shape"]) {
    if (!d.is_number_unsigned())
      fail_tensor(path, name, "shape entry is not a non-negative integer");
    uint64_t v = d.get<uint64_t>();
    if (v > uint64_t(std::numeric_limits<int64_t>::max()))
      fail_tensor(path, name, "shape entry too large");
    t.shape.push_back(int64_t(v));
  }
  const auto& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned())
    fail_tensor(path, name, "\"data_offsets\" must be two non-negative integers");
  t.begin = off[0].get<uint64_t>();
  t.end = off[1].get<uint64_t>();
  if (t.end < t.begin) fail_tensor(path, name, "data_offsets end before begin");
  uint64_t bytes = dtype_size(t.dtype);
  for (int64_t d : t.shape) {
    if (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / uint64_t(d))
      fail_tensor(path, name, "shape too large (byte count overflows)");
    bytes *= uint64_t(d);
  }
  if (bytes != t.end - t.begin)
    fail_tensor(path, name,
                "byte count " + std::to_string(t.end - t.begin) + " does not match dtype " +
                    dtype_name(t.dtype) + " and shape (" + std::to_string(bytes) + " expected)");
  return t;
}

// Offsets must tile [0, buffer_size) exactly: no holes, no overlaps, nothing past the end.
void check_coverage(std::vector<TensorInfo>& ts, uint64_t buffer_size, const std::string& path) {
  std::sort(ts.begin(), ts.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (const TensorInfo& t : ts) {
    if (t.end > buffer_size)
      fail_tensor(path, t.name,
                  "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                      ") out of range (data buffer is " + std::to_string(buffer_size) + " bytes)");
    if (t.begin < pos) fail_tensor(path, t.name, "data overlaps the previous tensor");
    if (t.begin > pos)
      fail_tensor(path, t.name, "hole of " + std::to_string(t.begin - pos) + " bytes before it");
    pos = t.end;
  }
  if (pos != buffer_size)
    fail(path, std::to_string(buffer_size - pos) + " bytes after the last tensor are not covered");
}

}  // namespace

DType dtype_from_name(const std::string& name) {
  for (const auto& [n, d] : dtype_table())
    if (name == n) return d;
  throw SafetensorsError("unknown dtype \"" + name +
                         "\" (known: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
}

const char* dtype_name(DType d) {
  for (const auto& [n, dt] : dtype_table())
    if (dt == d) return n;
  return "?";
}

size_t dtype_size(DType d) {
  switch (d) {
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
      return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
      return 1;
  }
  return 1;
}

uint64_t TensorInfo::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= uint64_t(d);
  return n;
}

std::vector<TensorInfo> parse_safetensors_header(const std::string& header, uint64_t buffer_size,
                                                 const std::string& path,
                                                 std::map<std::string, std::string>* metadata) {
  nlohmann::json j = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(path, "header is not valid JSON");
  if (!j.is_object()) fail(path, "header is not a JSON object");
  std::vector<TensorInfo> ts;
  for (const auto& [name, e] : j.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) fail(path, "__metadata__ is not an object");
      for (const auto& [k, v] : e.items()) {
        if (!v.is_string()) fail(path, "__metadata__ value of '" + k + "' is not a string");
        if (metadata) (*metadata)[k] = v.get<std::string>();
      }
      continue;
    }
    ts.push_back(parse_entry(name, e, path));
  }
  check_coverage(ts, buffer_size, path);
  return ts;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(errno));
  }
  uint64_t size = uint64_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path,
         "truncated: " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail(path, std::string("cannot mmap: ") + std::strerror(errno));
  map_ = map;
  map_size_ = size;
  try {
    const auto* bytes = static_cast<const uint8_t*>(map);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian u64
    if (n > kMaxHeaderBytes)
      fail(path,
           "header length " + std::to_string(n) + " exceeds the 100 MB limit (corrupt file?)");
    if (n > size - 8)
      fail(path, "header length " + std::to_string(n) + " runs past the end of the file (" +
                     std::to_string(size) + " bytes): truncated or not a safetensors file");
    std::string header(reinterpret_cast<const char*>(bytes + 8), n);
    data_ = bytes + 8 + n;
    tensors_ = parse_safetensors_header(header, size - 8 - n, path, &metadata_);
    for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
  } catch (...) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) > 0; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail(path_, "no tensor named '" + name + "'");
  return tensors_[it->second];
}

void write_safetensors(const std::string& path, const std::vector<TensorBlob>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const TensorBlob& t : tensors) {
    uint64_t bytes = dtype_size(t.dtype);
    for (int64_t d : t.shape) bytes *= uint64_t(d);
    if (header.contains(t.name)) fail_tensor(path, t.name, "written twice");
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    sizes.push_back(bytes);
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // data starts 8-byte aligned
  uint64_t n = text.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = char((n >> (8 * i)) & 0xff);
  std::vector<std::string_view> pieces{std::string_view(len, 8), text};
  for (size_t i = 0; i < tensors.size(); ++i)
    pieces.emplace_back(static_cast<const char*>(tensors[i].data), sizes[i]);
  // Temp file, fsync, rename: a reader never sees a half-written file under `path`.
  write_file_atomic(path, pieces);
}

}  // namespace sweep::model
