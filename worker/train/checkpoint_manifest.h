// manifest.json: what a checkpoint says about itself, so that a tool can tell whether it is put on
// the base it was trained on. Written by the job into each checkpoint's temp directory with the
// other files (checkpoint_manager.h), so a checkpoint has its manifest or does not exist.
// Fields (docs/worker.md, "Checkpoint manifest"):
//   format                 1
//   job_id, mode           the job, "lora" or "full"
//   base_model             {path, fingerprint} (model_fingerprint.h)
//   conversation_template  "vicuna_v1"
//   lora                   the PEFT adapter config (null in full mode)
//   params                 the job's training parameters
//   data                   {train, val: {path, bytes, hash}, image_folder}
//   step, metrics          the checkpoint's step and evaluation
// LibTorch-free.
#pragma once

#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "worker/train/model_fingerprint.h"

namespace sweep::train {

constexpr const char* kManifestFile = "manifest.json";
constexpr int kManifestFormat = 1;

// An adapter put on a base whose fingerprint differs from the one it was trained on. what() names
// the differing fields, both base paths and a hint.
class BaseMismatchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes `manifest` (format added) to dir/manifest.json by rename.
void write_manifest(const std::string& checkpoint_dir, nlohmann::json manifest);

// The checkpoint's manifest; nullopt when it has none (written before manifests existed). Throws
// std::runtime_error naming the file when it exists but is not a manifest.
std::optional<nlohmann::json> read_manifest(const std::string& checkpoint_dir);

// The trained-on base of a manifest: its path and fingerprint. Throws naming the checkpoint on a
// malformed manifest.
std::string manifest_base_path(const nlohmann::json& manifest, const std::string& checkpoint_dir);
ModelFingerprint manifest_base_fingerprint(const nlohmann::json& manifest,
                                           const std::string& checkpoint_dir);

// Checks that `checkpoint_dir` was trained on the model in `base_dir`: throws BaseMismatchError
// when its manifest's base fingerprint differs from base_dir's (fingerprint_model_dir). A
// checkpoint without a manifest is accepted with a one-line notice on `notices`. `base_flag`
// names the option that chose the base, for the hint ("--model", "--base", "base_model").
void check_checkpoint_base(const std::string& checkpoint_dir, const std::string& base_dir,
                           const std::string& base_flag, std::ostream& notices);

}  // namespace sweep::train
