#include "worker/model/tensor_store.h"

#include <sys/stat.h>

#include <fstream>
#include <set>
#include <stdexcept>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace sweep::model {
namespace {

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

torch::ScalarType to_torch_dtype(DType d) {
  switch (d) {
    case DType::kF64:
      return torch::kFloat64;
    case DType::kF32:
      return torch::kFloat32;
    case DType::kF16:
      return torch::kFloat16;
    case DType::kBF16:
      return torch::kBFloat16;
    case DType::kI64:
      return torch::kInt64;
    case DType::kI32:
      return torch::kInt32;
    case DType::kI16:
      return torch::kInt16;
    case DType::kI8:
      return torch::kInt8;
    case DType::kU8:
      return torch::kUInt8;
    case DType::kBool:
      return torch::kBool;
  }
  throw std::runtime_error("unsupported safetensors dtype");
}

DType from_torch_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat64:
      return DType::kF64;
    case torch::kFloat32:
      return DType::kF32;
    case torch::kFloat16:
      return DType::kF16;
    case torch::kBFloat16:
      return DType::kBF16;
    case torch::kInt64:
      return DType::kI64;
    case torch::kInt32:
      return DType::kI32;
    case torch::kInt16:
      return DType::kI16;
    case torch::kInt8:
      return DType::kI8;
    case torch::kUInt8:
      return DType::kU8;
    case torch::kBool:
      return DType::kBool;
    default:
      break;
  }
  throw std::runtime_error(std::string("cannot write dtype ") + c10::toString(t) +
                           " to safetensors");
}

void TensorStore::add_file(const std::string& path) {
  auto file = std::make_shared<SafetensorsFile>(path);
  for (const TensorInfo& t : file->tensors()) {
    if (tensors_.count(t.name))
      throw std::runtime_error(source_ + ": tensor '" + t.name + "' appears in two files");
    // from_blob wants a mutable pointer; the views are documented read-only.
    auto* data = const_cast<uint8_t*>(file->data(t));
    tensors_[t.name] =
        torch::from_blob(data, t.shape, torch::TensorOptions().dtype(to_torch_dtype(t.dtype)));
  }
  files_.push_back(std::move(file));
}

TensorStore TensorStore::open_file(const std::string& path) {
  TensorStore s;
  s.source_ = path;
  s.add_file(path);
  return s;
}

TensorStore TensorStore::open_dir(const std::string& dir) {
  TensorStore s;
  s.source_ = dir;
  std::string index = dir + "/model.safetensors.index.json";
  if (file_exists(index)) {
    std::ifstream in(index);
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") ||
        !j["weight_map"].is_object())
      throw std::runtime_error(
          index + ": not a safetensors index (expected {\"weight_map\": {name: file}})");
    std::set<std::string> shards;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string())
        throw std::runtime_error(index + ": weight_map entry '" + name + "' is not a file name");
      shards.insert(file.get<std::string>());
    }
    for (const std::string& shard : shards) {
      if (shard.find('/') != std::string::npos || !file_exists(dir + "/" + shard))
        throw std::runtime_error(index + " lists shard '" + shard + "' which is missing from " +
                                 dir);
      s.add_file(dir + "/" + shard);
    }
    for (const auto& [name, file] : j["weight_map"].items())
      if (!s.tensors_.count(name))
        throw std::runtime_error(index + ": tensor '" + name + "' is not in its shard " +
                                 file.get<std::string>());
    return s;
  }
  std::string single = dir + "/model.safetensors";
  if (!file_exists(single))
    throw std::runtime_error("no model.safetensors or model.safetensors.index.json in " + dir +
                             " (only safetensors checkpoints are read; convert .bin files first)");
  s.add_file(single);
  return s;
}

void save_tensors(const std::string& path,
                  const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep;  // owns the contiguous CPU copies while writing
  std::vector<TensorBlob> blobs;
  for (const auto& [name, t] : tensors) {
    keep.push_back(t.detach().to(torch::kCPU).contiguous());
    const auto& c = keep.back();
    blobs.push_back({name, from_torch_dtype(c.scalar_type()), c.sizes().vec(), c.data_ptr()});
  }
  write_safetensors(path, blobs, metadata);
}

}  // namespace sweep::model
