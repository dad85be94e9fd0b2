#include "protocol/pack.h"

#include <algorithm>
#include <array>

#include "protocol/train_params.h"

namespace sweep {
namespace {

using json = nlohmann::json;

// The top-level job.json fields of the key, in the order mismatches are reported.
constexpr std::array<const char*, 7> kJobFields = {
    "base_model", "train_data", "val_data", "image_folder", "device", "threads", "feature_cache"};

constexpr std::array<const char*, 25> kAdapterLocal = {
    "lora_r",         "lora_alpha",
    "lora_dropout",   "use_rslora",
    "rank_pattern",   "alpha_pattern",
    "learning_rate",  "mm_projector_lr",
    "batch_size",     "gradient_accumulation_steps",
    "lr_scheduler",   "warmup_ratio",
    "warmup_steps",   "weight_decay",
    "adam_beta1",     "adam_beta2",
    "adam_epsilon",   "max_grad_norm",
    "seed",           "max_steps",
    "eval_every",     "eval_samples",
    "max_new_tokens", "logging_steps",
    "save_top_k"};

const json& value_or_null(const json& obj, const std::string& key) {
  static const json kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

}  // namespace

bool is_adapter_local_param(const std::string& name) {
  return std::find(kAdapterLocal.begin(), kAdapterLocal.end(), name) != kAdapterLocal.end();
}

json pack_key(const JobFile& job) {
  const json resolved = TrainParams::from_json(job.params).to_json();
  json shared = json::object();
  for (const auto& [name, value] : resolved.items())
    if (!is_adapter_local_param(name)) shared[name] = value;
  return json{{"base_model", job.base_model},
              {"train_data", job.train_data},
              {"val_data", job.val_data},
              {"image_folder", job.image_folder},
              {"device", job.device},
              {"threads", job.threads},
              {"feature_cache", job.feature_cache},
              {"params", shared}};
}

bool packable(const JobFile& job) {
  TrainParams p = TrainParams::from_json(job.params);
  return p.mode != "full" && !p.lora_vision_tower;
}

std::optional<std::string> pack_mismatch(const JobFile& a, const JobFile& b) {
  json ka = pack_key(a);
  json kb = pack_key(b);
  if (ka == kb) return std::nullopt;
  auto differs = [](const std::string& what, const json& x, const json& y) {
    return what + " differs: " + x.dump() + " vs " + y.dump();
  };
  for (const char* field : kJobFields)
    if (ka.at(field) != kb.at(field)) return differs(field, ka.at(field), kb.at(field));
  const json& pa = ka.at("params");
  const json& pb = kb.at("params");
  json names = pa;
  names.update(pb);  // every key of either side, in sorted order
  for (const auto& [name, unused] : names.items()) {
    const json& x = value_or_null(pa, name);
    const json& y = value_or_null(pb, name);
    if (x != y) return differs("param '" + name + "'", x, y);
  }
  return std::string("pack keys differ");
}

}  // namespace sweep
