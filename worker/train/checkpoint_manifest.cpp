#include "worker/train/checkpoint_manifest.h"

#include <filesystem>
#include <fstream>

#include "protocol/job_file.h"

namespace sweep::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string short_hash(const std::string& h) { return h.size() > 8 ? h.substr(0, 8) : h; }

std::string describe(const ModelFingerprint& f) {
  return "config " + short_hash(f.config) + ", tensors " + short_hash(f.tensors) + " (" +
         std::to_string(f.tensor_count) + "), weights " + short_hash(f.weights) + ", tokenizer " +
         (f.tokenizer.empty() ? "none" : short_hash(f.tokenizer));
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

void write_manifest(const std::string& checkpoint_dir, json manifest) {
  manifest["format"] = kManifestFormat;
  write_file_atomic((fs::path(checkpoint_dir) / kManifestFile).string(), manifest.dump(2) + "\n");
}

std::optional<json> read_manifest(const std::string& checkpoint_dir) {
  const fs::path path = fs::path(checkpoint_dir) / kManifestFile;
  std::ifstream in(path);
  if (!in) return std::nullopt;
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("format") || !j.contains("base_model"))
    throw std::runtime_error(path.string() +
                             " is not a checkpoint manifest (no format or base_model); delete it "
                             "to use the checkpoint unchecked");
  if (j["format"] != kManifestFormat)
    throw std::runtime_error(path.string() + " has manifest format " + j["format"].dump() +
                             "; this sweep-worker reads format " + std::to_string(kManifestFormat) +
                             ": use a matching sweep-worker");
  return j;
}

std::string manifest_base_path(const json& manifest, const std::string& checkpoint_dir) {
  const json& base = manifest.at("base_model");
  if (!base.is_object() || !base.contains("path") || !base["path"].is_string())
    throw std::runtime_error(checkpoint_dir + "/" + kManifestFile + ": base_model.path missing");
  return base["path"].get<std::string>();
}

ModelFingerprint manifest_base_fingerprint(const json& manifest,
                                           const std::string& checkpoint_dir) {
  const std::string source = checkpoint_dir + "/" + kManifestFile;
  const json& base = manifest.at("base_model");
  if (!base.is_object() || !base.contains("fingerprint"))
    throw std::runtime_error(source + ": base_model.fingerprint missing");
  return ModelFingerprint::from_json(base["fingerprint"], source);
}

void check_checkpoint_base(const std::string& checkpoint_dir, const std::string& base_dir,
                           const std::string& base_flag, std::ostream& notices) {
  std::optional<json> manifest = read_manifest(checkpoint_dir);
  if (!manifest) {
    notices << "sweep-worker: notice: " << checkpoint_dir << " has no " << kManifestFile
            << " (written by an older version): its base model is not checked\n";
    return;
  }
  const ModelFingerprint trained = manifest_base_fingerprint(*manifest, checkpoint_dir);
  const ModelFingerprint given = fingerprint_model_dir(base_dir);
  const std::vector<std::string> differ = fingerprint_differences(trained, given);
  if (differ.empty()) return;
  const std::string trained_path = manifest_base_path(*manifest, checkpoint_dir);
  throw BaseMismatchError(
      "checkpoint " + checkpoint_dir + " was trained on another base model (" + joined(differ) +
      " differ)\n  trained on: " + trained_path + " [" + describe(trained) + "]\n  given:      " +
      fs::absolute(base_dir).lexically_normal().string() + " [" + describe(given) +
      "]\n  hint: pass the base it was trained on (" + base_flag + " " + trained_path +
      "), or train an adapter for this base; an adapter on another base computes "
      "something else without any error");
}

}  // namespace sweep::train
