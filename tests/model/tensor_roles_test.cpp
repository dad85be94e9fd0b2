// Tensor-name classification: parts and roles of every layout the loader reads, LoRA and PEFT
// keys, bias / norm flags, and the name mappings.
#include "worker/model/tensor_roles.h"

#include <vector>

#include <gtest/gtest.h>

namespace sweep::model {
namespace {

struct Expected {
  const char* name;
  ModelPart part;
  TensorRole role;
};

void expect_class(const Expected& e) {
  const TensorClass c = classify(e.name);
  EXPECT_EQ(c.part, e.part) << e.name;
  EXPECT_EQ(c.role, e.role) << e.name;
}

TEST(TensorRoles, LlavaHfLayoutBeforeTransformers452) {
  for (const Expected& e : std::vector<Expected>{
           {"vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
            ModelPart::kVisionTower, TensorRole::kVisionTower},
           {"vision_tower.vision_model.embeddings.class_embedding", ModelPart::kVisionTower,
            TensorRole::kVisionTower},
           {"multi_modal_projector.linear_1.weight", ModelPart::kProjector, TensorRole::kProjector},
           {"multi_modal_projector.linear_2.bias", ModelPart::kProjector, TensorRole::kProjector},
           {"language_model.model.embed_tokens.weight", ModelPart::kLanguageModel,
            TensorRole::kEmbedding},
           {"language_model.model.layers.3.mlp.down_proj.weight", ModelPart::kLanguageModel,
            TensorRole::kLanguageModel},
           {"language_model.model.norm.weight", ModelPart::kLanguageModel,
            TensorRole::kLanguageModel},
           {"language_model.lm_head.weight", ModelPart::kLanguageModel, TensorRole::kLmHead},
       }) {
    expect_class(e);
  }
}

TEST(TensorRoles, TransformersAtLeast452LayoutClassifiesTheSame) {
  for (const Expected& e : std::vector<Expected>{
           {"model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
            ModelPart::kVisionTower, TensorRole::kVisionTower},
           {"model.multi_modal_projector.linear_1.weight", ModelPart::kProjector,
            TensorRole::kProjector},
           {"model.language_model.embed_tokens.weight", ModelPart::kLanguageModel,
            TensorRole::kEmbedding},
           {"model.language_model.layers.3.mlp.down_proj.weight", ModelPart::kLanguageModel,
            TensorRole::kLanguageModel},
           {"model.language_model.norm.weight", ModelPart::kLanguageModel,
            TensorRole::kLanguageModel},
           {"lm_head.weight", ModelPart::kLanguageModel, TensorRole::kLmHead},
       }) {
    expect_class(e);
  }
}

TEST(TensorRoles, OriginalLlavaNamesClassifyTheSame) {
  expect_class({"model.mm_projector.0.weight", ModelPart::kProjector, TensorRole::kProjector});
  expect_class({"model.vision_tower.vision_tower.vision_model.pre_layrnorm.bias",
                ModelPart::kVisionTower, TensorRole::kVisionTower});
  expect_class({"model.embed_tokens.weight", ModelPart::kLanguageModel, TensorRole::kEmbedding});
  expect_class({"model.layers.0.self_attn.o_proj.weight", ModelPart::kLanguageModel,
                TensorRole::kLanguageModel});
}

TEST(TensorRoles, LoraTensorsKeepThePartTheyAdapt) {
  for (const Expected& e : std::vector<Expected>{
           {"language_model.model.layers.0.self_attn.q_proj.lora_A.weight",
            ModelPart::kLanguageModel, TensorRole::kLoraA},
           {"language_model.model.layers.0.self_attn.q_proj.lora_B.weight",
            ModelPart::kLanguageModel, TensorRole::kLoraB},
           {"vision_tower.vision_model.encoder.layers.1.self_attn.v_proj.lora_A.weight",
            ModelPart::kVisionTower, TensorRole::kLoraA},
           // PEFT file keys, with and without the adapter name, in both module layouts.
           {"base_model.model.language_model.model.layers.1.mlp.up_proj.lora_B.weight",
            ModelPart::kLanguageModel, TensorRole::kLoraB},
           {"base_model.model.model.language_model.layers.1.mlp.up_proj.lora_A.default.weight",
            ModelPart::kLanguageModel, TensorRole::kLoraA},
           {"base_model.model.model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.lora_B."
            "weight",
            ModelPart::kVisionTower, TensorRole::kLoraB},
       }) {
    expect_class(e);
  }
  EXPECT_TRUE(classify("language_model.lm_head.lora_A.weight").is_lora());
  EXPECT_FALSE(classify("language_model.lm_head.weight").is_lora());
}

TEST(TensorRoles, ModulePathsClassifyLikeTheirParameters) {
  expect_class({"language_model.lm_head", ModelPart::kLanguageModel, TensorRole::kLmHead});
  expect_class({"language_model.model.layers.0.self_attn.q_proj", ModelPart::kLanguageModel,
                TensorRole::kLanguageModel});
  expect_class({"vision_tower.vision_model.encoder.layers.0.self_attn.q_proj",
                ModelPart::kVisionTower, TensorRole::kVisionTower});
}

TEST(TensorRoles, ExporterBuffersAreRecomputedAndStrangersUnknown) {
  expect_class({"language_model.model.layers.0.self_attn.rotary_emb.inv_freq",
                ModelPart::kLanguageModel, TensorRole::kRecomputed});
  expect_class({"model.layers.0.self_attn.rotary_emb.inv_freq", ModelPart::kLanguageModel,
                TensorRole::kRecomputed});
  expect_class({"vision_tower.vision_model.embeddings.position_ids", ModelPart::kVisionTower,
                TensorRole::kRecomputed});
  expect_class({"text_encoder.weight", ModelPart::kUnknown, TensorRole::kUnknown});
  expect_class({"", ModelPart::kUnknown, TensorRole::kUnknown});
}

TEST(TensorRoles, BiasAndNormFlagsFollowTheLastModule) {
  for (const char* norm :
       {"vision_tower.vision_model.pre_layrnorm.weight",
        "vision_tower.vision_model.encoder.layers.0.layer_norm1.weight",
        "vision_tower.vision_model.post_layernorm.bias",
        "language_model.model.layers.0.input_layernorm.weight",
        "language_model.model.layers.1.post_attention_layernorm.weight",
        "language_model.model.norm.weight", "model.language_model.norm.weight"}) {
    EXPECT_TRUE(classify(norm).is_norm) << norm;
  }
  for (const char* other : {"language_model.model.layers.0.mlp.gate_proj.weight",
                            "language_model.model.layers.0.self_attn.q_proj.lora_A.weight",
                            "language_model.lm_head.weight", "multi_modal_projector.linear_1.bias",
                            "vision_tower.vision_model.embeddings.class_embedding"}) {
    EXPECT_FALSE(classify(other).is_norm) << other;
  }
  EXPECT_TRUE(classify("multi_modal_projector.linear_1.bias").is_bias);
  EXPECT_TRUE(classify("vision_tower.vision_model.post_layernorm.bias").is_bias);
  EXPECT_FALSE(classify("multi_modal_projector.linear_1.weight").is_bias);
}

TEST(TensorNames, AdapterKeysMapToModelParameterNames) {
  EXPECT_EQ(canonical_adapter_key(
                "base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.default."
                "weight"),
            "language_model.model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(canonical_adapter_key("base_model.model.language_model.model.layers.0.mlp.up_proj."
                                  "lora_B.weight"),
            "language_model.model.layers.0.mlp.up_proj.lora_B.weight");
  EXPECT_EQ(canonical_adapter_key("multi_modal_projector.linear_2.bias"),
            "multi_modal_projector.linear_2.bias");
  const std::string name = "language_model.model.layers.1.self_attn.v_proj.lora_B.weight";
  EXPECT_EQ(peft_adapter_key(name), "base_model.model." + name);
  EXPECT_EQ(canonical_adapter_key(peft_adapter_key(name)), name);
}

TEST(TensorNames, ModelParameterNamesAreAlreadyCanonical) {
  for (const char* name :
       {kEmbedTokensWeight, kLmHeadWeight, "vision_tower.vision_model.pre_layrnorm.weight",
        "multi_modal_projector.linear_1.weight"}) {
    EXPECT_EQ(canonical_tensor_name(name), name);
  }
  EXPECT_EQ(classify(kEmbedTokensWeight).role, TensorRole::kEmbedding);
  EXPECT_EQ(classify(kLmHeadWeight).role, TensorRole::kLmHead);
}

TEST(TensorNames, LayoutsRoundTripThroughTheCanonicalNames) {
  const std::vector<std::string> names = {
      "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
      "multi_modal_projector.linear_1.bias",
      "language_model.model.layers.3.mlp.down_proj.weight",
      "language_model.model.embed_tokens.weight",
      kLmHeadWeight,
  };
  std::vector<std::string> written;
  for (const std::string& n : names) {
    EXPECT_EQ(tensor_name_in_layout(n, TensorLayout::kLlavaHf), n);
    written.push_back(tensor_name_in_layout(n, TensorLayout::kTransformers452));
    EXPECT_EQ(canonical_tensor_name(written.back()), n);
  }
  EXPECT_EQ(written[2], "model.language_model.layers.3.mlp.down_proj.weight");
  EXPECT_EQ(written[4], "lm_head.weight");
  EXPECT_EQ(detect_layout(written), TensorLayout::kTransformers452);
  EXPECT_EQ(detect_layout(names), TensorLayout::kLlavaHf);
  // Original LLaVA checkpoints are written as llava-hf.
  EXPECT_EQ(detect_layout({"model.vision_tower.vision_tower.vision_model.post_layernorm.weight",
                           "model.layers.0.mlp.up_proj.weight"}),
            TensorLayout::kLlavaHf);
}

}  // namespace
}  // namespace sweep::model
