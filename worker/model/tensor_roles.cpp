#include "worker/model/tensor_roles.h"

#include <utility>
#include <vector>

namespace sweep::model {
namespace {

constexpr const char* kPeftPrefix = "base_model.model.";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::vector<std::string> split_dots(const std::string& name) {
  std::vector<std::string> out(1);
  for (char c : name) {
    if (c == '.') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

ModelPart part_of(const std::string& top) {
  if (top == "vision_tower") return ModelPart::kVisionTower;
  if (top == "multi_modal_projector") return ModelPart::kProjector;
  if (top == "language_model") return ModelPart::kLanguageModel;
  return ModelPart::kUnknown;
}

// Role of a non-LoRA tensor from its llava-hf segments.
TensorRole base_role(ModelPart part, const std::vector<std::string>& seg) {
  switch (part) {
    case ModelPart::kVisionTower:
      return TensorRole::kVisionTower;
    case ModelPart::kProjector:
      return TensorRole::kProjector;
    case ModelPart::kLanguageModel:
      if (seg.size() > 1 && seg[1] == "lm_head") return TensorRole::kLmHead;
      if (seg.size() > 2 && seg[1] == "model" && seg[2] == "embed_tokens") {
        return TensorRole::kEmbedding;
      }
      return TensorRole::kLanguageModel;
    case ModelPart::kUnknown:
      break;
  }
  return TensorRole::kUnknown;
}

// Exporters write these buffers under any prefix; they are always the last two segments.
bool is_recomputed(const std::vector<std::string>& seg) {
  if (seg.size() < 2) return false;
  const std::string& module = seg[seg.size() - 2];
  const std::string& leaf = seg.back();
  return (module == "rotary_emb" && leaf == "inv_freq") ||
         (module == "embeddings" && leaf == "position_ids");
}

}  // namespace

TensorClass classify(const std::string& name) {
  const std::vector<std::string> seg = split_dots(canonical_adapter_key(name));
  TensorClass c;
  c.part = part_of(seg.front());
  c.is_bias = seg.back() == "bias";
  c.is_norm = seg.size() > 1 && seg[seg.size() - 2].find("norm") != std::string::npos;
  for (const std::string& s : seg) {
    if (s == "lora_A") c.role = TensorRole::kLoraA;
    if (s == "lora_B") c.role = TensorRole::kLoraB;
  }
  if (c.is_lora()) return c;
  c.role = is_recomputed(seg) ? TensorRole::kRecomputed : base_role(c.part, seg);
  return c;
}

std::string canonical_tensor_name(const std::string& name) {
  // Order matters: the longest (most specific) prefixes first.
  static const std::vector<std::pair<std::string, std::string>> prefixes = {
      {"model.vision_tower.vision_tower.", "vision_tower."},  // original LLaVA
      {"model.vision_tower.", "vision_tower."},               // transformers >= 4.52
      {"model.multi_modal_projector.", "multi_modal_projector."},
      {"model.language_model.", "language_model.model."},
      {"model.mm_projector.0.", "multi_modal_projector.linear_1."},  // original LLaVA
      {"model.mm_projector.2.", "multi_modal_projector.linear_2."},
      {"lm_head.", "language_model.lm_head."},
      {"model.", "language_model.model."},  // original LLaVA LLaMA body
  };
  for (const auto& [from, to] : prefixes) {
    if (starts_with(name, from)) return to + name.substr(from.size());
  }
  return name;
}

TensorLayout detect_layout(const std::vector<std::string>& names) {
  for (const std::string& n : names) {
    if (starts_with(n, "model.vision_tower.vision_tower.")) continue;  // original LLaVA
    if (starts_with(n, "model.language_model.") || starts_with(n, "model.vision_tower.") ||
        starts_with(n, "model.multi_modal_projector."))
      return TensorLayout::kTransformers452;
  }
  return TensorLayout::kLlavaHf;
}

std::string tensor_name_in_layout(const std::string& name, TensorLayout layout) {
  if (layout == TensorLayout::kLlavaHf) return name;
  static const std::vector<std::pair<std::string, std::string>> prefixes = {
      {"vision_tower.", "model.vision_tower."},
      {"multi_modal_projector.", "model.multi_modal_projector."},
      {"language_model.model.", "model.language_model."},
      {"language_model.lm_head.", "lm_head."},
  };
  for (const auto& [from, to] : prefixes) {
    if (starts_with(name, from)) return to + name.substr(from.size());
  }
  return name;
}

std::string canonical_adapter_key(const std::string& key) {
  std::string name =
      starts_with(key, kPeftPrefix) ? key.substr(std::string(kPeftPrefix).size()) : key;
  // PEFT writes the adapter name into the key when saving without stripping it.
  for (const std::string ab : {".lora_A", ".lora_B"}) {
    const std::string with_name = ab + ".default.";
    const size_t pos = name.find(with_name);
    if (pos != std::string::npos) name.replace(pos, with_name.size(), ab + ".");
  }
  return canonical_tensor_name(name);
}

std::string peft_adapter_key(const std::string& name) { return kPeftPrefix + name; }

}  // namespace sweep::model
