#include "worker/train/base_score_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "protocol/job_file.h"
#include "worker/train/feature_key.h"

namespace sweep::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json identity_of(const std::string& path) {
  ImageIdentity id = identify_image(path);  // path, size and mtime of any file
  return json{{"path", id.path}, {"bytes", id.bytes}, {"mtime_ns", id.mtime_ns}};
}

// The worker program as a file: a rebuilt worker may score differently.
json program_identity() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return nullptr;
  try {
    return identity_of(exe.string());
  } catch (const std::runtime_error&) {
    return nullptr;
  }
}

}  // namespace

std::string base_score_key(const std::string& base_model_dir, const std::string& val_data,
                           const std::vector<std::string>& image_paths, const json& eval_settings,
                           const std::string& dtype, const std::string& device) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(base_model_dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  json base = json::array();
  for (const std::string& f : files) base.push_back(identity_of(f));
  json images = json::array();
  for (const std::string& p : image_paths) images.push_back(p.empty() ? json() : identity_of(p));
  return json{{"base_model", base},
              {"val_data", identity_of(val_data)},
              {"images", images},
              {"eval", eval_settings},
              {"dtype", dtype},
              {"device", device},
              {"worker", program_identity()}}
      .dump();  // nlohmann::json objects keep their keys sorted: canonical
}

BaseScoreCache::BaseScoreCache(std::string dir, std::string key)
    : dir_(std::move(dir)), key_(std::move(key)) {}

std::string BaseScoreCache::path() const {
  return dir_ + "/base-score-" + hex64(fnv1a(key_)) + ".json";
}

std::optional<BaseScore> BaseScoreCache::load() const {
  std::ifstream in(path());
  if (!in) return std::nullopt;
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("key", "") != key_) return std::nullopt;
  try {
    BaseScore s;
    s.val_loss = j.at("val_loss").get<double>();
    s.val_token_acc = j.at("val_token_acc").get<double>();
    s.val_exact_match = j.at("val_exact_match").get<double>();
    s.val_samples = j.at("val_samples").get<int64_t>();
    s.val_tokens = j.at("val_tokens").get<int64_t>();
    return s;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

void BaseScoreCache::save(const BaseScore& s) const {
  try {
    fs::create_directories(dir_);
    write_file_atomic(path(), json{{"key", key_},
                                   {"val_loss", s.val_loss},
                                   {"val_token_acc", s.val_token_acc},
                                   {"val_exact_match", s.val_exact_match},
                                   {"val_samples", s.val_samples},
                                   {"val_tokens", s.val_tokens}}
                                  .dump());
  } catch (const std::exception& e) {
    std::cerr << "sweep-worker: base-model score not cached (" << e.what() << ")\n";
  }
}

}  // namespace sweep::train
