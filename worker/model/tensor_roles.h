// What a tensor of the LLaVA model is, decided from its name alone, for every layout the loader
// reads (docs/model.md, "Checkpoints accepted"):
//
//   llava-hf (transformers < 4.52)  vision_tower.*  multi_modal_projector.*  language_model.model.*
//                                   language_model.lm_head.weight
//   transformers >= 4.52            model.vision_tower.*  model.multi_modal_projector.*
//                                   model.language_model.*  lm_head.weight
//   original LLaVA                  model.vision_tower.vision_tower.*  model.mm_projector.{0,2}.*
//                                   model.{layers,embed_tokens,norm}.*  lm_head.weight
//   PEFT adapter files              base_model.model.<any of the above>.lora_{A,B}[.default].weight
//
// The model's own parameter names and module paths are the llava-hf ones. This is the one place
// that interprets names; code that needs a tensor's part or role asks `classify`. LibTorch-free.
#pragma once

#include <string>
#include <vector>

namespace sweep::model {

// The model's parameters that code names directly.
inline constexpr const char* kEmbedTokensWeight = "language_model.model.embed_tokens.weight";
inline constexpr const char* kLmHeadWeight = "language_model.lm_head.weight";

// The top-level module a tensor belongs to. LoRA tensors belong to the part they adapt.
enum class ModelPart { kVisionTower, kProjector, kLanguageModel, kUnknown };

enum class TensorRole {
  kVisionTower,    // CLIP vision tower weights
  kProjector,      // multi_modal_projector.linear_{1,2}
  kEmbedding,      // language_model.model.embed_tokens
  kLanguageModel,  // decoder layers and final norm of the language model
  kLmHead,         // language_model.lm_head
  kLoraA,          // <module>.lora_A.weight [r, in], under any part
  kLoraB,          // <module>.lora_B.weight [out, r]
  kRecomputed,     // buffers some exporters write and the model recomputes (rotary_emb.inv_freq,
                   // embeddings.position_ids): skipped when loading
  kUnknown,        // not a name of this model
};

struct TensorClass {
  ModelPart part = ModelPart::kUnknown;
  TensorRole role = TensorRole::kUnknown;
  bool is_bias = false;  // the name ends in ".bias"
  bool is_norm = false;  // a LayerNorm / RMSNorm parameter (its module's name contains "norm")

  bool is_lora() const { return role == TensorRole::kLoraA || role == TensorRole::kLoraB; }
};

// Classifies a parameter name or module path of any layout above. Module paths classify like the
// parameters under them ("language_model.lm_head" is kLmHead); is_bias / is_norm are only
// meaningful for parameter names.
TensorClass classify(const std::string& name);

// Maps a tensor name of any layout above (PEFT keys excepted) to the model's llava-hf name;
// unknown names are returned unchanged.
std::string canonical_tensor_name(const std::string& name);

// How a checkpoint names its tensors on disk. kLlavaHf: llava-hf before transformers 4.52
// (vision_tower.*, multi_modal_projector.*, language_model.model.*, language_model.lm_head.*), the
// model's own names. kTransformers452: transformers >= 4.52 (model.vision_tower.*,
// model.multi_modal_projector.*, model.language_model.*, lm_head.*). Original LLaVA checkpoints
// are read but written as kLlavaHf.
enum class TensorLayout { kLlavaHf, kTransformers452 };

// The layout of a checkpoint from its tensor names.
TensorLayout detect_layout(const std::vector<std::string>& names);
// The name a model parameter (llava-hf name) has in `layout`; canonical_tensor_name inverts it.
std::string tensor_name_in_layout(const std::string& name, TensorLayout layout);

// Maps a PEFT adapter file key ("base_model.model." prefix, optional adapter name in
// "lora_A.default.weight", any module layout) to the model's parameter name.
std::string canonical_adapter_key(const std::string& key);

// The PEFT file key of a model parameter: "base_model.model." + name.
std::string peft_adapter_key(const std::string& name);

}  // namespace sweep::model
