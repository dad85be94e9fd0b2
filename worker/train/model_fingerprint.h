// What a model directory is, as a few hashes: the fingerprint an adapter is checked against
// before it is put on a base (checkpoint_manifest.h). Two directories with the same config,
// tensors and weights have the same fingerprint whatever their path, file dates or tensor-name
// layout (llava-hf, transformers >= 4.52, original LLaVA: names are compared canonically).
// LibTorch-free: it reads config.json, the safetensors headers and a sample of the weight bytes
// through the memory map.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::train {

struct ModelFingerprint {
  std::string config;     // hash of config.json, parsed and re-serialised (keys sorted)
  std::string tensors;    // hash of the canonical tensor names, dtypes and shapes, sorted by name
  std::string weights;    // hash of sampled weight bytes (model_weights_hash below)
  std::string tokenizer;  // hash of tokenizer.model's bytes ("" when the directory has none)
  int64_t tensor_count = 0;
  int64_t weight_bytes = 0;  // total bytes of the tensors' data

  nlohmann::json to_json() const;
  // Throws std::runtime_error naming `source` when a field is missing or of the wrong type.
  static ModelFingerprint from_json(const nlohmann::json& j, const std::string& source);
  // One hash of every field, for keys.
  std::string digest() const;
};

// The fingerprint of a model directory (config.json + model.safetensors or a sharded checkpoint
// with model.safetensors.index.json). Computed once per directory and process: later calls with
// the same absolute path return the first result. Throws std::runtime_error naming the directory
// when config.json or the weights cannot be read.
//
// The weight hash samples: a tensor of at most 64 KiB is hashed whole; a larger one by 16 blocks
// of 4 KiB spread evenly over its bytes (first and last included), plus its size. A base of 14 GB
// (a 7B model in bf16, ~300 tensors) is thus read for about 20 MB, not 14 GB: another seed, another
// fine-tune or another precision changes every block; an edit of a few weights between the
// sampled blocks is not seen.
ModelFingerprint fingerprint_model_dir(const std::string& model_dir);

// The names of the fields that differ ("config", "tensors", "weights", "tokenizer"); empty when
// the two are the same model. tensor_count and weight_bytes are covered by "tensors".
std::vector<std::string> fingerprint_differences(const ModelFingerprint& a,
                                                 const ModelFingerprint& b);

// A data file as a job used it: absolute path, size and a hash of its whole content.
nlohmann::json data_file_fingerprint(const std::string& path);

}  // namespace sweep::train
