#include "worker/train/model_fingerprint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <tuple>

#include "worker/model/safetensors.h"
#include "worker/model/tensor_roles.h"
#include "worker/train/feature_key.h"

namespace sweep::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kWholeTensorBytes = 64 * 1024;
constexpr uint64_t kBlockBytes = 4096;
constexpr uint64_t kBlocks = 16;

// The hash of a whole file, or "" when it does not exist.
std::string file_hash(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  uint64_t h = kFnvOffset;
  std::vector<char> buf(1 << 16);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
    h = fnv1a(buf.data(), static_cast<size_t>(in.gcount()), h);
  return hex64(h);
}

std::vector<std::string> weight_files(const fs::path& dir) {
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::ifstream in(index);
    json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw std::runtime_error(index.string() + " has no weight_map object");
    std::vector<std::string> files;
    for (const auto& item : j["weight_map"].items())
      files.push_back((dir / item.value().get<std::string>()).string());
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
    return files;
  }
  if (fs::exists(dir / "model.safetensors")) return {(dir / "model.safetensors").string()};
  throw std::runtime_error(dir.string() +
                           " has neither model.safetensors nor model.safetensors.index.json");
}

// Bytes of one tensor as the fingerprint sees them: whole when small, else kBlocks blocks.
uint64_t sample_hash(const uint8_t* data, uint64_t n, uint64_t h) {
  h = fnv1a(&n, sizeof n, h);
  if (n <= kWholeTensorBytes) return fnv1a(data, n, h);
  for (uint64_t i = 0; i < kBlocks; ++i) {
    const uint64_t offset = i * (n - kBlockBytes) / (kBlocks - 1);
    h = fnv1a(data + offset, kBlockBytes, h);
  }
  return h;
}

struct TensorEntry {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t content = 0;
};

ModelFingerprint compute(const fs::path& dir) {
  ModelFingerprint f;
  {
    std::ifstream in(dir / "config.json");
    if (!in) throw std::runtime_error("cannot read " + (dir / "config.json").string());
    json config = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded())
      throw std::runtime_error((dir / "config.json").string() + " is not valid JSON");
    config.erase("torch_dtype");  // the storage dtype is in the tensors' fingerprint
    config.erase("transformers_version");
    f.config = hex64(fnv1a(config.dump()));
  }
  std::map<std::string, TensorEntry> entries;  // canonical name -> entry, sorted
  for (const std::string& file : weight_files(dir)) {
    model::SafetensorsFile st(file);
    for (const model::TensorInfo& t : st.tensors()) {
      TensorEntry e{model::dtype_name(t.dtype), t.shape,
                    sample_hash(st.data(t), t.end - t.begin, kFnvOffset)};
      entries[model::canonical_tensor_name(t.name)] = std::move(e);
      f.weight_bytes += static_cast<int64_t>(t.end - t.begin);
    }
  }
  uint64_t names = kFnvOffset, weights = kFnvOffset;
  for (const auto& [name, e] : entries) {
    names = fnv1a(name + "\n" + e.dtype + "\n", names);
    for (int64_t d : e.shape) names = fnv1a(&d, sizeof d, names);
    weights = fnv1a(&e.content, sizeof e.content, weights);
  }
  f.tensors = hex64(names);
  f.weights = hex64(weights);
  f.tensor_count = static_cast<int64_t>(entries.size());
  f.tokenizer = file_hash(dir / "tokenizer.model");
  return f;
}

}  // namespace

json ModelFingerprint::to_json() const {
  return {{"config", config},       {"tensors", tensors},           {"weights", weights},
          {"tokenizer", tokenizer}, {"tensor_count", tensor_count}, {"weight_bytes", weight_bytes}};
}

ModelFingerprint ModelFingerprint::from_json(const json& j, const std::string& source) {
  try {
    ModelFingerprint f;
    f.config = j.at("config").get<std::string>();
    f.tensors = j.at("tensors").get<std::string>();
    f.weights = j.at("weights").get<std::string>();
    f.tokenizer = j.at("tokenizer").get<std::string>();
    f.tensor_count = j.at("tensor_count").get<int64_t>();
    f.weight_bytes = j.at("weight_bytes").get<int64_t>();
    return f;
  } catch (const json::exception& e) {
    throw std::runtime_error(source + ": bad base-model fingerprint: " + e.what());
  }
}

std::string ModelFingerprint::digest() const { return hex64(fnv1a(to_json().dump())); }

ModelFingerprint fingerprint_model_dir(const std::string& model_dir) {
  static std::mutex mu;
  static std::map<std::string, ModelFingerprint> done;
  const std::string key = fs::absolute(model_dir).lexically_normal().string();
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = done.find(key); it != done.end()) return it->second;
  }
  ModelFingerprint f;
  try {
    f = compute(key);
  } catch (const model::SafetensorsError& e) {
    throw std::runtime_error(std::string("cannot fingerprint ") + model_dir + ": " + e.what());
  }
  std::lock_guard<std::mutex> lock(mu);
  done[key] = f;
  return f;
}

std::vector<std::string> fingerprint_differences(const ModelFingerprint& a,
                                                 const ModelFingerprint& b) {
  std::vector<std::string> out;
  if (a.config != b.config) out.push_back("config");
  if (std::tie(a.tensors, a.tensor_count, a.weight_bytes) !=
      std::tie(b.tensors, b.tensor_count, b.weight_bytes))
    out.push_back("tensors");
  if (a.weights != b.weights) out.push_back("weights");
  if (a.tokenizer != b.tokenizer) out.push_back("tokenizer");
  return out;
}

json data_file_fingerprint(const std::string& path) {
  if (path.empty()) return nullptr;
  const std::string abs = fs::absolute(path).lexically_normal().string();
  std::error_code ec;
  const auto bytes = fs::file_size(abs, ec);
  return {
      {"path", abs}, {"bytes", ec ? -1 : static_cast<int64_t>(bytes)}, {"hash", file_hash(abs)}};
}

}  // namespace sweep::train
