#include "orchestrator/spec/closest_key.h"

#include <gtest/gtest.h>

namespace sweep {
namespace {

TEST(EditDistance, CountsInsertionsDeletionsSubstitutionsAndSwaps) {
  EXPECT_EQ(edit_distance("lora_r", "lora_r"), 0u);
  EXPECT_EQ(edit_distance("lora_alpah", "lora_alpha"), 1u);  // adjacent swap
  EXPECT_EQ(edit_distance("lr", "lora_r"), 4u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("batch_sise", "batch_size"), 1u);
}

TEST(ClosestKey, SuggestsTheNearestKnownKey) {
  const std::vector<std::string> keys = {"lora_r", "lora_alpha", "learning_rate", "batch_size"};
  EXPECT_EQ(closest_key("lora_alpah", keys), "lora_alpha");
  EXPECT_EQ(closest_key("learning_rat", keys), "learning_rate");
  EXPECT_EQ(closest_key("lora_rr", keys), "lora_r");
}

TEST(ClosestKey, SuggestsNothingForAnUnrelatedWord) {
  EXPECT_EQ(closest_key("optimizer", {"lora_r", "lora_alpha", "batch_size"}), "");
}

}  // namespace
}  // namespace sweep
