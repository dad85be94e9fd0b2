// Runs the built `sweep` binary: `sweep lint` exits 0 with warnings, 1 on a spec error or on a
// warning with --strict; `sweep plan` shows the same warnings (stderr, or "warnings" in JSON).
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/common/cli_run.h"

#ifndef SWEEP_BIN
#error "SWEEP_BIN must name the sweep executable"
#endif

namespace sweep {
namespace {

namespace fs = std::filesystem;

using testing::RunResult;
using testing::shell_quote;

const std::string kHead =
    "name: t\n"
    "base_model: builtin:tiny-llava\n"
    "data:\n"
    "  train: builtin:shapes/vqa_train.json\n"
    "  val: builtin:shapes/vqa_val.json\n"
    "  image_folder: builtin:shapes/images\n";

class LintCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "sweep_lint_test_XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    clean_ = write("clean.yaml", kHead + "grid:\n  learning_rate: [1.0e-4, 2.0e-4]\n");
    noisy_ = write("noisy.yaml", kHead + "grid:\n  learning_rate: [2.0e-4, 3.0e-2]\n");
    broken_ = write("broken.yaml", kHead + "grid:\n  learning_rat: [2.0e-4]\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // Runs `sweep args`.
  RunResult run(const std::string& args) { return testing::run_program(SWEEP_BIN, args, dir_); }

  std::string dir_, clean_, noisy_, broken_;
};

TEST_F(LintCli, CleanSpecExitsZeroWithNoWarnings) {
  for (const char* strict : {"", " --strict"}) {
    RunResult r = run("lint " + shell_quote(clean_) + strict);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "no warnings (2 jobs)\n");
    EXPECT_EQ(r.err, "");
  }
}

TEST_F(LintCli, WarningsExitZeroUnlessStrict) {
  RunResult r = run("lint " + shell_quote(noisy_));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("warning[learning-rate-high]: learning_rate above 0.01 in 1 of 2 jobs: "
                        "0.03\n  why: ",
                        0),
            0u)
      << r.out;
  EXPECT_NE(r.out.find("1 warning (2 jobs)"), std::string::npos) << r.out;

  RunResult strict = run("lint --strict " + shell_quote(noisy_));
  EXPECT_EQ(strict.exit_code, 1);
  EXPECT_EQ(strict.err.rfind("error: " + noisy_ + ": 1 warning with --strict\n", 0), 0u)
      << strict.err;
}

TEST_F(LintCli, SpecErrorExitsOne) {
  RunResult r = run("lint " + shell_quote(broken_));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown key 'learning_rat'"), std::string::npos) << r.err;
  EXPECT_EQ(run("lint " + shell_quote(dir_ + "/missing.yaml")).exit_code, 1);
}

TEST_F(LintCli, JsonListsTheWarningsWithTheirJobs) {
  RunResult r = run("lint --format json " + shell_quote(noisy_));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["jobs"], 2);
  ASSERT_EQ(out["warnings"].size(), 1u);
  EXPECT_EQ(out["warnings"][0]["id"], "learning-rate-high");
  EXPECT_EQ(out["warnings"][0]["jobs"].size(), 1u);
}

TEST_F(LintCli, PlanShowsTheSameWarnings) {
  RunResult table = run("plan " + shell_quote(noisy_));
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.find("warning["), std::string::npos);  // stdout stays the plan
  EXPECT_EQ(table.err.rfind("warning[learning-rate-high]: ", 0), 0u) << table.err;

  RunResult json = run("plan --format json " + shell_quote(noisy_));
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const nlohmann::json out = nlohmann::json::parse(json.out);
  EXPECT_EQ(out["jobs"].size(), 2u);
  ASSERT_EQ(out["warnings"].size(), 1u);
  EXPECT_EQ(out["warnings"][0]["jobs"][0], out["jobs"][1]["hash"]);

  RunResult clean = run("plan " + shell_quote(clean_));
  EXPECT_EQ(clean.err, "");
}

}  // namespace
}  // namespace sweep
