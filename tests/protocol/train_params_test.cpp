#include "protocol/train_params.h"

#include <cmath>

#include <gtest/gtest.h>

#include "common/failure.h"

namespace sweep {
namespace {

TEST(TrainParams, DefaultsFillMissingKeys) {
  TrainParams p = TrainParams::from_json({{"lora_r", 4}});
  EXPECT_EQ(p.lora_r, 4);
  EXPECT_EQ(p.lr_scheduler, "cosine");
  EXPECT_EQ(p.target_modules.size(), 7u);
  EXPECT_FALSE(p.mm_projector_lr.has_value());
}

TEST(TrainParams, ScaleIsAlphaOverRankOrOverSqrtRank) {
  TrainParams p = TrainParams::from_json({{"lora_r", 16}, {"lora_alpha", 32}});
  EXPECT_DOUBLE_EQ(p.lora_scale(), 2.0);
  p.use_rslora = true;
  EXPECT_DOUBLE_EQ(p.lora_scale(), 8.0);
}

TEST(TrainParams, RejectsValueOutsideItsRangeNamingTheKey) {
  try {
    TrainParams::from_json({{"lora_dropout", 1.0}});
    FAIL();
  } catch (const Failure& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser);
    EXPECT_STREQ(e.what(), "parameter 'lora_dropout' must be a number in [0, 1)");
  }
  try {
    TrainParams::from_json({{"lr_scheduler", "step"}});
    FAIL();
  } catch (const Failure& e) {
    EXPECT_STREQ(e.what(), "parameter 'lr_scheduler' must be one of cosine, linear, constant");
  }
}

// Integer keys are held as int: a value past int's range is refused naming the key and the range,
// instead of wrapping to a value that fails another check (or none).
TEST(TrainParams, IntegerPastIntsRangeIsRefusedWithTheRange) {
  const std::pair<nlohmann::json, std::string> cases[] = {
      {{{"batch_size", 1000000000000LL}},
       "parameter 'batch_size' must be an integer in [1, 2147483647], not 1000000000000"},
      {{{"lora_r", 2147483648LL}},
       "parameter 'lora_r' must be an integer in [1, 2147483647], not 2147483648"},
      {{{"max_steps", 4294967297.0}},
       "parameter 'max_steps' must be an integer in [1, 2147483647], not 4294967297.0"},
  };
  for (const auto& [params, message] : cases) {
    try {
      TrainParams::from_json(params);
      FAIL() << params.dump();
    } catch (const Failure& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUser);
      EXPECT_EQ(std::string(e.what()), message);
    }
  }
  EXPECT_EQ(TrainParams::from_json({{"batch_size", 2147483647LL}}).batch_size, 2147483647);
  EXPECT_EQ(check_param_value(*find_param_spec("batch_size"), -5), "must be an integer >= 1");
}

TEST(TrainParams, GradientCheckpointingIsABoolDefaultingToOff) {
  EXPECT_FALSE(TrainParams::from_json(nlohmann::json::object()).gradient_checkpointing);
  TrainParams p = TrainParams::from_json({{"gradient_checkpointing", true}});
  EXPECT_TRUE(p.gradient_checkpointing);
  EXPECT_EQ(p.to_json().at("gradient_checkpointing"), true);
  try {
    TrainParams::from_json({{"gradient_checkpointing", "yes"}});
    FAIL();
  } catch (const Failure& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser);
    EXPECT_STREQ(e.what(), "parameter 'gradient_checkpointing' must be true or false");
  }
}

TEST(TrainParams, IntegerValuedFloatCountsAsInteger) {
  const ParamSpec* r = find_param_spec("lora_r");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(check_param_value(*r, 8.0), "");
  EXPECT_EQ(check_param_value(*r, 8.5), "must be an integer >= 1");
  EXPECT_EQ(check_param_value(*r, 0), "must be an integer >= 1");
}

TEST(TrainParams, JsonRoundTrip) {
  TrainParams p =
      TrainParams::from_json({{"mm_projector_lr", 2e-5}, {"rank_pattern", {{"q_proj", 4}}}});
  TrainParams q = TrainParams::from_json(p.to_json());
  EXPECT_EQ(q.to_json(), p.to_json());
  EXPECT_DOUBLE_EQ(*q.mm_projector_lr, 2e-5);
}

}  // namespace
}  // namespace sweep
