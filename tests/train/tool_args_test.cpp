#include "worker/train/tool_args.h"

#include <gtest/gtest.h>

namespace sweep::train {
namespace {

TEST(ToolArgs, ReadsPositionalsAndOptionsInBothSpellings) {
  ToolArgs a("merge", {"ckpt", "--base", "b", "--out=o"}, {"base", "out"});
  EXPECT_EQ(a.positionals(), std::vector<std::string>{"ckpt"});
  EXPECT_EQ(a.required("base"), "b");
  EXPECT_EQ(a.get("out"), "o");
  EXPECT_EQ(a.get("missing", "x"), "x");
}

TEST(ToolArgs, UnknownOptionNamesTheToolAndTheKnownOnes) {
  try {
    ToolArgs("score", {"--colour", "red"}, {"model", "data"});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "score: unknown option --colour (known: --data, --model)");
  }
}

TEST(ToolArgs, MissingRequiredAndBadIntegerAreReported) {
  ToolArgs a("predict", {"--threads", "two"}, {"threads", "model"});
  EXPECT_THROW(
      {
        try {
          a.required("model");
        } catch (const std::invalid_argument& e) {
          EXPECT_STREQ(e.what(), "predict: --model is required");
          throw;
        }
      },
      std::invalid_argument);
  try {
    a.get_int("threads", 1);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "predict: --threads must be an integer, got 'two'");
  }
}

}  // namespace
}  // namespace sweep::train
