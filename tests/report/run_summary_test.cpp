// The end of `sweep run`: the top of the leaderboard with the gain over the base, and the page.
#include "orchestrator/report/run_summary.h"

#include <unistd.h>

#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/report/report_world.h"

namespace sweep::report {
namespace {

namespace fs = std::filesystem;

TEST(RunSummary, TopJobsShowTheirGainOverTheBase) {
  auto w = testing::make_report_world();
  auto text = leaderboard_top(*w.store, w.sweep, 2);
  ASSERT_TRUE(text.ok()) << text.error().to_string();
  EXPECT_NE(text->find("top 2 by val_loss (min; base model 2)"), std::string::npos) << *text;
  EXPECT_NE(text->find("1. hash1abc"), std::string::npos) << *text;
  EXPECT_NE(text->find("val_loss 1.2 vs base 2 (gain +0.8)"), std::string::npos) << *text;
  EXPECT_EQ(text->find("no job beat the base model"), std::string::npos) << *text;
  EXPECT_NE(text->find("2. hash2abc"), std::string::npos) << *text;
  EXPECT_EQ(text->find("3. "), std::string::npos) << *text;
}

TEST(RunSummary, WritesTheReportAndNamesIt) {
  auto w = testing::make_report_world();
  const fs::path runs = fs::temp_directory_path() / ("sweep-report-" + std::to_string(::getpid()));
  std::ostringstream out;
  print_run_report(*w.store, "tiny", runs.string(), out);
  const std::string path = default_report_path(runs.string(), "tiny");
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_GT(fs::file_size(path), 1000u);
  EXPECT_NE(out.str().find("report: " + path), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("top 3 by val_loss"), std::string::npos) << out.str();
  fs::remove_all(runs);
}

}  // namespace
}  // namespace sweep::report
