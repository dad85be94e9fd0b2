// Shapes: N images, P image tokens, Dv vision width.
#include "worker/train/feature_cache.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>

#include <torch/torch.h>

namespace sweep::train {
namespace {

constexpr const char* kMaxMbVariable = "SWEEP_FEATURE_CACHE_MB";

uint64_t hash_tensor(const std::string& name, const torch::Tensor& t, uint64_t h) {
  h = fnv1a(name, h);
  h = fnv1a(std::string(c10::toString(t.scalar_type())), h);
  for (int64_t d : t.sizes()) h = fnv1a(&d, sizeof d, h);
  torch::Tensor host = t.detach().to(torch::kCPU).contiguous();
  return fnv1a(host.data_ptr(), host.nbytes(), h);
}

}  // namespace

std::string vision_tower_fingerprint(model::LlavaForConditionalGeneration& m) {
  torch::NoGradGuard no_grad;
  const model::LlavaConfig& c = m->config();
  uint64_t h =
      fnv1a("hidden=" + std::to_string(c.vision.hidden_size) +
            ";inter=" + std::to_string(c.vision.intermediate_size) +
            ";layers=" + std::to_string(c.vision.num_hidden_layers) +
            ";heads=" + std::to_string(c.vision.num_attention_heads) + ";image=" +
            std::to_string(c.vision.image_size) + ";patch=" + std::to_string(c.vision.patch_size) +
            ";eps=" + std::to_string(c.vision.layer_norm_eps) + ";act=" + c.vision.hidden_act +
            ";feature_layer=" + std::to_string(c.vision_feature_layer) +
            ";select=" + c.vision_feature_select_strategy);
  for (const auto& item : m->vision_tower->named_parameters())
    h = hash_tensor(item.key(), item.value(), h);
  for (const auto& item : m->vision_tower->named_buffers())
    h = hash_tensor(item.key(), item.value(), h);
  return hex64(h);
}

bool vision_tower_frozen(model::LlavaForConditionalGeneration& m) {
  for (const auto& item : m->vision_tower->named_parameters())
    if (item.value().requires_grad() || item.key().find("lora_") != std::string::npos) return false;
  return true;
}

uint64_t feature_cache_max_bytes() {
  const char* text = std::getenv(kMaxMbVariable);
  if (!text || !*text) return FeatureStore::kDefaultMaxBytes;
  char* end = nullptr;
  errno = 0;
  const unsigned long long mb = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || text[0] == '-')
    throw std::runtime_error(std::string(kMaxMbVariable) + "='" + text +
                             "' is not a size in MiB (a non-negative integer; 0 turns the "
                             "vision-feature cache off)");
  return static_cast<uint64_t>(mb) << 20;
}

VisionFeatureCache::VisionFeatureCache(const std::string& dir, uint64_t max_bytes,
                                       model::LlavaForConditionalGeneration& m,
                                       const PreprocessKey& preprocess)
    : store_(dir, max_bytes),
      fingerprint_(vision_tower_fingerprint(m)),
      preprocess_(preprocess),
      dtype_(m->vision_tower->parameters().front().scalar_type()),
      device_(m->device()),
      shape_{m->config().num_image_tokens(), m->config().vision.hidden_size} {}

FeatureKey VisionFeatureCache::key_for(const std::string& image_path) const {
  FeatureKey key;
  key.fingerprint = fingerprint_;
  key.image = identify_image(image_path);
  key.preprocess = preprocess_;
  key.dtype = c10::toString(dtype_);
  key.device = c10::DeviceTypeName(device_.type(), /*lower_case=*/true);
  return key;
}

torch::Tensor VisionFeatureCache::lookup(const FeatureKey& key) {
  std::optional<StoredFeatures> f = store_.get(key);
  // The key names dtype and shape already; checking them again keeps a foreign file out.
  if (!f || f->dtype != static_cast<int32_t>(dtype_) || f->shape != shape_) return {};
  torch::Tensor t = torch::empty(shape_, torch::TensorOptions().dtype(dtype_));  // (P, Dv)
  if (static_cast<size_t>(t.nbytes()) != f->bytes.size()) return {};
  std::memcpy(t.data_ptr(), f->bytes.data(), f->bytes.size());
  return t.to(device_);
}

void VisionFeatureCache::save(const FeatureKey& key, const torch::Tensor& hidden) {
  torch::Tensor host = hidden.detach().to(torch::kCPU).contiguous();  // (P, Dv)
  if (host.scalar_type() != dtype_ || host.sizes().vec() != shape_) return;
  StoredFeatures f;
  f.dtype = static_cast<int32_t>(dtype_);
  f.shape = shape_;
  f.bytes.assign(static_cast<const char*>(host.data_ptr()), host.nbytes());
  if (!store_.put(key, f)) ++stats_.failed_writes;
}

void VisionFeatureCache::fill(model::LlavaForConditionalGeneration& m, model::MultimodalInputs& in,
                              const std::vector<std::string>& image_paths) {
  std::vector<int64_t> rows;  // batch rows with an image
  for (size_t b = 0; b < in.has_image.size(); ++b)
    if (in.has_image[b]) rows.push_back(static_cast<int64_t>(b));
  if (rows.empty()) return;
  std::vector<torch::Tensor> hidden(rows.size());  // (P, Dv) each
  std::vector<FeatureKey> keys(rows.size());
  std::vector<int64_t> missing;  // indices into rows
  for (size_t i = 0; i < rows.size(); ++i) {
    keys[i] = key_for(image_paths.at(static_cast<size_t>(rows[i])));
    hidden[i] = lookup(keys[i]);
    if (!hidden[i].defined()) missing.push_back(static_cast<int64_t>(i));
  }
  stats_.hits += static_cast<int64_t>(rows.size() - missing.size());
  stats_.misses += static_cast<int64_t>(missing.size());
  if (!missing.empty()) {
    torch::NoGradGuard no_grad;
    std::vector<int64_t> missing_rows;
    for (int64_t i : missing) missing_rows.push_back(rows[static_cast<size_t>(i)]);
    auto idx = torch::tensor(missing_rows, torch::kInt64).to(in.pixel_values.device());
    torch::Tensor computed = m->vision_hidden(in.pixel_values.index_select(0, idx));  // (Nm,P,Dv)
    for (size_t j = 0; j < missing.size(); ++j) {
      const auto i = static_cast<size_t>(missing[j]);
      hidden[i] = computed[static_cast<int64_t>(j)];
      save(keys[i], hidden[i]);
    }
  }
  in.image_hidden = torch::stack(hidden);  // (Ni, P, Dv)
}

torch::Tensor VisionFeatureCache::hidden(model::LlavaForConditionalGeneration& m,
                                         const std::string& image_path,
                                         const torch::Tensor& pixels) {
  const FeatureKey key = key_for(image_path);
  torch::Tensor h = lookup(key);
  if (h.defined()) {
    ++stats_.hits;
    return h;
  }
  ++stats_.misses;
  torch::NoGradGuard no_grad;
  h = m->vision_hidden(pixels.unsqueeze(0))[0];  // (P, Dv)
  save(key, h);
  return h;
}

std::unique_ptr<VisionFeatureCache> open_feature_cache(const std::string& dir, const TrainParams& p,
                                                       model::LlavaForConditionalGeneration& m,
                                                       const PreprocessKey& preprocess) {
  if (dir.empty() || p.mode != "lora" || p.lora_vision_tower || !vision_tower_frozen(m))
    return nullptr;
  const uint64_t max_bytes = feature_cache_max_bytes();
  if (max_bytes == 0) return nullptr;
  try {
    auto cache = std::make_unique<VisionFeatureCache>(dir, max_bytes, m, preprocess);
    std::cerr << "sweep-worker: vision-feature cache " << dir << " (vision tower "
              << cache->fingerprint() << ", cap " << (max_bytes >> 20) << " MiB)\n";
    return cache;
  } catch (const std::runtime_error& e) {
    // The cache only saves time: without it the job computes the same features itself.
    std::cerr << "sweep-worker: running without the vision-feature cache: " << e.what() << "\n";
    return nullptr;
  }
}

}  // namespace sweep::train
