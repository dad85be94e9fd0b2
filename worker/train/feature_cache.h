// A cache of the frozen vision tower's output (LlavaForConditionalGeneration::vision_hidden: the
// CLIP hidden state that goes into the projector) shared by the jobs of a sweep through a
// directory (FeatureStore). Each image is run through the vision tower once per sweep; the
// projector, which may train, runs on the cached state in every job.
//
// An entry is keyed by the vision tower's fingerprint, the image file (path, size, mtime), the
// preprocessing, and the dtype and device the state was computed in (FeatureKey), so a change of
// any of them is a miss. Used from one thread (the job's main thread) only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "protocol/train_params.h"
#include "worker/model/llava.h"
#include "worker/train/feature_store.h"

namespace sweep::train {

// FNV-1a over the vision tower's parameters and buffers (name, dtype, shape, bytes as loaded)
// and the config fields that shape its output (sizes, activation, vision_feature_layer, select
// strategy); 16 hex digits. Reads every vision-tower byte once (copied to the host from a GPU).
std::string vision_tower_fingerprint(model::LlavaForConditionalGeneration& m);

// True when nothing in the vision tower trains: no parameter requires grad, no LoRA adapter.
bool vision_tower_frozen(model::LlavaForConditionalGeneration& m);

// The size cap: $SWEEP_FEATURE_CACHE_MB MiB (0 turns the cache off), else 1 GiB. Throws
// std::runtime_error naming the variable when it is not a non-negative integer.
uint64_t feature_cache_max_bytes();

struct FeatureCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t failed_writes = 0;  // entries that could not be written (the job goes on without them)
};

class VisionFeatureCache {
 public:
  // `m` loaded, in its final dtype and on its device, with its vision tower frozen. Throws
  // std::runtime_error when `dir` cannot be created.
  VisionFeatureCache(const std::string& dir, uint64_t max_bytes,
                     model::LlavaForConditionalGeneration& m, const PreprocessKey& preprocess);

  // Sets in.image_hidden (Ni, P, Dv) for the samples with has_image; image_paths[b] is the image
  // file of sample b. Stored states are read; the others are computed in one vision-tower pass
  // over their rows of in.pixel_values, without a graph, and stored.
  void fill(model::LlavaForConditionalGeneration& m, model::MultimodalInputs& in,
            const std::vector<std::string>& image_paths);
  // One image: pixels [3, S, S] -> its vision_hidden [P, Dv], from the cache or computed.
  torch::Tensor hidden(model::LlavaForConditionalGeneration& m, const std::string& image_path,
                       const torch::Tensor& pixels);

  const FeatureCacheStats& stats() const { return stats_; }
  const std::string& fingerprint() const { return fingerprint_; }
  const FeatureStore& store() const { return store_; }

 private:
  FeatureKey key_for(const std::string& image_path) const;
  torch::Tensor lookup(const FeatureKey& key);  // [P, Dv] on the model's device; undefined: miss
  void save(const FeatureKey& key, const torch::Tensor& hidden);

  FeatureStore store_;
  std::string fingerprint_;
  PreprocessKey preprocess_;
  torch::ScalarType dtype_;
  torch::Device device_;
  std::vector<int64_t> shape_;  // [P, Dv]
  FeatureCacheStats stats_;
};

// The cache for a job, or null when it does not apply: no directory given, a cap of 0, mode
// full, lora_vision_tower, or any vision-tower parameter that trains; also null (with a warning on
// stderr) when the directory cannot be created. Throws when $SWEEP_FEATURE_CACHE_MB is malformed.
std::unique_ptr<VisionFeatureCache> open_feature_cache(const std::string& dir, const TrainParams& p,
                                                       model::LlavaForConditionalGeneration& m,
                                                       const PreprocessKey& preprocess);

}  // namespace sweep::train
