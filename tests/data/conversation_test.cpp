#include "data/conversation.h"

#include <gtest/gtest.h>

#include "tests/data/data_fixtures.h"

namespace sweep::data {
namespace {

using testing::make_sample;

TEST(VicunaTemplate, TwoRoundConversationMatchesLlavaString) {
  const Sample s =
      make_sample("1", "coco/1.jpg",
                  {"What is on the table?\n<image>", "A red cup.", "What colour is it?", "Red."});
  EXPECT_EQ(vicuna_v1_prompt(s),
            "A chat between a curious user and an artificial intelligence assistant. The "
            "assistant gives helpful, detailed, and polite answers to the user's questions. "
            "USER: <image>\nWhat is on the table? ASSISTANT: A red cup.</s>"
            "USER: What colour is it? ASSISTANT: Red.</s>");
}

TEST(VicunaTemplate, TextOnlySampleKeepsItsTextAsWritten) {
  const Sample s = make_sample("2", "", {"  Hello ", "Hi."});
  EXPECT_EQ(vicuna_v1_prompt(s), std::string(kVicunaSystem) + " USER:   Hello  ASSISTANT: Hi.</s>");
}

TEST(VicunaTemplate, LeadingGptTurnIsDropped) {
  Sample s = make_sample("3", "", {"Q", "A"});
  s.conversations.insert(s.conversations.begin(), Turn{"gpt", "Welcome."});
  EXPECT_EQ(vicuna_v1_prompt(s), std::string(kVicunaSystem) + " USER: Q ASSISTANT: A</s>");
}

TEST(VicunaTemplate, RolesThatDoNotAlternateThrowNamingTheTurn) {
  Sample s = make_sample("7", "", {"Q", "A"});
  s.conversations[1].from = "human";
  try {
    vicuna_v1_prompt(s);
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "sample 7: conversations[1] is from \"human\", expected \"gpt\" (roles must "
              "alternate)");
  }
}

TEST(ImageToken, MovedToTheFrontWithTheRestStripped) {
  EXPECT_EQ(move_image_token_to_front("What is this?\n<image>"), "<image>\nWhat is this?");
  EXPECT_EQ(move_image_token_to_front("<image>\nDescribe."), "<image>\nDescribe.");
  EXPECT_EQ(move_image_token_to_front("Look <image> here "), "<image>\nLook  here");
  EXPECT_EQ(move_image_token_to_front("<image>"), "<image>");
  EXPECT_EQ(move_image_token_to_front("no token"), "no token");
}

}  // namespace
}  // namespace sweep::data
