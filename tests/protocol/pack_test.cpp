#include "protocol/pack.h"

#include <gtest/gtest.h>

#include "common/failure.h"
#include "protocol/train_params.h"

namespace sweep {
namespace {

JobFile job(nlohmann::json params) {
  JobFile j;
  j.job_id = "j";
  j.run_dir = "/runs/j";
  j.base_model = "/models/tiny";
  j.train_data = "/data/train.json";
  j.val_data = "/data/val.json";
  j.image_folder = "/data/images";
  j.params = std::move(params);
  return j;
}

TEST(PackKey, AdapterLocalParamsMayDiffer) {
  JobFile a = job({{"lora_r", 4}, {"lora_alpha", 8}, {"learning_rate", 1e-4}, {"seed", 1}});
  JobFile b = job({{"lora_r", 16},
                   {"lora_alpha", 32},
                   {"learning_rate", 3e-4},
                   {"seed", 2},
                   {"max_steps", 50},
                   {"batch_size", 2},
                   {"mm_projector_lr", 1e-5},
                   {"rank_pattern", {{"q_proj", 8}}}});
  EXPECT_EQ(pack_key(a), pack_key(b));
  EXPECT_EQ(pack_mismatch(a, b), std::nullopt);
}

TEST(PackKey, DefaultWrittenOutEqualsDefaultLeftOut) {
  JobFile a = job(nlohmann::json::object());
  JobFile b = job({{"model_max_length", 2048}, {"precision", "auto"}, {"mode", "lora"}});
  EXPECT_EQ(pack_key(a), pack_key(b));
}

TEST(PackKey, SharedParamMismatchNamesTheKeyAndBothValues) {
  JobFile a = job({{"model_max_length", 2048}});
  JobFile b = job({{"model_max_length", 512}});
  EXPECT_NE(pack_key(a), pack_key(b));
  EXPECT_EQ(pack_mismatch(a, b), "param 'model_max_length' differs: 2048 vs 512");
  JobFile c = job({{"target_modules", {"q_proj"}}});
  EXPECT_EQ(pack_mismatch(a, c),
            "param 'target_modules' differs: "
            "[\"q_proj\",\"k_proj\",\"v_proj\",\"o_proj\",\"gate_proj\",\"up_proj\",\"down_proj\"]"
            " vs [\"q_proj\"]");
}

TEST(PackKey, JobFieldMismatchComesBeforeParams) {
  JobFile a = job({{"precision", "fp32"}});
  JobFile b = job({{"precision", "bf16"}});
  b.base_model = "/models/other";
  EXPECT_EQ(pack_mismatch(a, b), "base_model differs: \"/models/tiny\" vs \"/models/other\"");
  JobFile c = job(nlohmann::json::object());
  c.threads = 4;
  EXPECT_EQ(pack_mismatch(job(nlohmann::json::object()), c), "threads differs: 1 vs 4");
  JobFile d = job(nlohmann::json::object());
  d.feature_cache = "/cache";
  EXPECT_EQ(pack_mismatch(job(nlohmann::json::object()), d),
            "feature_cache differs: \"\" vs \"/cache\"");
}

TEST(PackKey, EverySharedSettingIsPartOfTheKey) {
  const nlohmann::json base = nlohmann::json::object();
  for (const nlohmann::json& change :
       {nlohmann::json{{"train_projector", false}},
        nlohmann::json{{"image_aspect_ratio", "square"}},
        nlohmann::json{{"gradient_checkpointing", true}}, nlohmann::json{{"mode", "full"}},
        nlohmann::json{{"lora_vision_tower", true}}}) {
    EXPECT_NE(pack_mismatch(job(base), job(change)), std::nullopt) << change.dump();
  }
  JobFile other_device = job(base);
  other_device.device = "cuda";
  EXPECT_NE(pack_mismatch(job(base), other_device), std::nullopt);
  JobFile other_val = job(base);
  other_val.val_data = "";
  EXPECT_NE(pack_mismatch(job(base), other_val), std::nullopt);
}

TEST(PackKey, AdapterLocalListIsExactlyTheDocumentedOne) {
  EXPECT_TRUE(is_adapter_local_param("lora_r"));
  EXPECT_TRUE(is_adapter_local_param("save_top_k"));
  EXPECT_TRUE(is_adapter_local_param("mm_projector_lr"));
  EXPECT_FALSE(is_adapter_local_param("mode"));
  EXPECT_FALSE(is_adapter_local_param("target_modules"));
  EXPECT_FALSE(is_adapter_local_param("precision"));
  int local = 0;
  for (const ParamSpec& s : train_param_specs()) local += is_adapter_local_param(s.name) ? 1 : 0;
  EXPECT_EQ(local, 25);
}

TEST(Packable, FullModeAndVisionTowerAdaptersRunAlone) {
  EXPECT_TRUE(packable(job(nlohmann::json::object())));
  EXPECT_FALSE(packable(job({{"mode", "full"}})));
  EXPECT_FALSE(packable(job({{"lora_vision_tower", true}})));
}

TEST(PackKey, InvalidParamsThrowNamingTheKey) {
  try {
    pack_key(job({{"lora_r", 0}}));
    FAIL();
  } catch (const Failure& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser);
    EXPECT_STREQ(e.what(), "parameter 'lora_r' must be an integer >= 1");
  }
}

}  // namespace
}  // namespace sweep
