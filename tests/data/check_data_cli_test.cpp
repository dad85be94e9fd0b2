// Runs the real `sweep check-data` on generated datasets: the report on stdout, the exit code.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>

#include "tests/data/data_fixtures.h"

namespace sweep::data {
namespace {

using nlohmann::json;
using testing::TempDir;
using testing::write_text;

struct CliResult {
  int exit_code;
  std::string out;
};

CliResult run_cli(const std::string& args) {
  const std::string cmd = std::string(SWEEP_BIN) + " check-data " + args + " 2>/dev/null";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

json qa_sample(const std::string& id, const std::string& image, const std::string& q) {
  json s{{"id", id},
         {"conversations",
          json::array({{{"from", "human"}, {"value", q}}, {{"from", "gpt"}, {"value", "Red."}}})}};
  if (!image.empty()) s["image"] = image;
  return s;
}

TEST(CheckDataCli, CleanDatasetExitsZeroWithOk) {
  TempDir dir;
  testing::write_png(dir / "a.png", testing::solid_image(5, 3, {1, 2, 3}));
  write_text(dir / "d.json", json::array({qa_sample("1", "a.png", "<image>\nColour?"),
                                          qa_sample("2", "", "Colour?")})
                                 .dump());
  const CliResult r = run_cli(dir / "d.json" + " --image-folder " + dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(dir / "d.json" + ": 2 samples, 0 errors, 0 warnings: OK"), std::string::npos)
      << r.out;
}

TEST(CheckDataCli, FaultsExitOneAndJsonNamesThem) {
  TempDir dir;
  write_text(dir / "d.json", json::array({qa_sample("1", "missing.png", "<image>\nColour?"),
                                          qa_sample("2", "", "<image>\nColour?")})
                                 .dump());
  const CliResult r = run_cli(dir / "d.json" + " --image-folder " + dir.path() + " --format json");
  EXPECT_EQ(r.exit_code, 1);
  const json report = json::parse(r.out);
  EXPECT_EQ(report["errors"], 2);
  EXPECT_EQ(report["counts_by_kind"]["image_missing"], 1);
  EXPECT_EQ(report["counts_by_kind"]["image_token_without_image"], 1);
  EXPECT_EQ(report["problems"][0]["id"], "1");
}

TEST(CheckDataCli, MaxPixelsRefusesLargerImagesAndAMissingFolderIsOneLine) {
  TempDir dir;
  testing::write_png(dir / "a.png", testing::solid_image(40, 30, {1, 2, 3}));
  write_text(dir / "d.json", json::array({qa_sample("1", "a.png", "<image>\nColour?"),
                                          qa_sample("2", "a.png", "<image>\nColour?")})
                                 .dump());
  CliResult r = run_cli(dir / "d.json" + " --image-folder " + dir.path() + " --max-pixels 1199");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("image_too_large: image " + dir / "a.png" +
                       ": too large (40 x 30 pixels, limit 1199)"),
            std::string::npos)
      << r.out;
  r = run_cli(dir / "d.json" + " --image-folder " + dir.path() + " --max-pixels 1200");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  r = run_cli(dir / "d.json" + " --image-folder " + dir / "nope");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("error   image_folder_missing: image folder " + dir / "nope" +
                       " does not exist (2 samples name an image under it)"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("image_missing"), std::string::npos) << r.out;
}

TEST(CheckDataCli, MissingImageFolderFlagIsAUsageError) {
  const CliResult r = run_cli("d.json");
  EXPECT_EQ(r.exit_code, 1);
}

}  // namespace
}  // namespace sweep::data
