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

TEST(ToolArgs, HelpAnywhereThrowsTheUsageBeforeAnyOtherCheck) {
  const std::string usage = "usage: sweep-worker init-model --out DIR";
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"},
                                             {"-h"},
                                             {"--out", "x", "--help"},
                                             {"--colour", "red", "-h"},
                                             {"pos", "--help"}}) {
    try {
      ToolArgs("init-model", args, {"out"}, usage);
      FAIL() << "no exception for " << args.back();
    } catch (const ToolHelpRequested& e) {
      EXPECT_EQ(std::string(e.what()), usage);
    }
  }
  // The value of an option is not a request for help.
  ToolArgs a("predict", {"--prompt", "-h"}, {"prompt"}, usage);
  EXPECT_EQ(a.get("prompt"), "-h");
}

TEST(ToolArgs, RunToolPrintsTheUsageOnStdoutAndReturnsZeroForHelp) {
  ::testing::internal::CaptureStdout();
  int code = run_tool("merge", [] {
    ToolArgs("merge", {"--help"}, {"out"}, "usage: sweep-worker merge CKPT --out DIR");
    return 1;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "usage: sweep-worker merge CKPT --out DIR\n");
}

TEST(ToolArgs, AsksForHelpSkipsOptionValues) {
  EXPECT_TRUE(asks_for_help({"--help"}));
  EXPECT_TRUE(asks_for_help({"job.json", "-h"}));
  EXPECT_FALSE(asks_for_help({"job.json"}));
  EXPECT_FALSE(asks_for_help({"--prompt", "--help"}));
  EXPECT_TRUE(asks_for_help({"--prompt=x", "--help"}));
}

}  // namespace
}  // namespace sweep::train
