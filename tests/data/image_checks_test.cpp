// Images checked to the last byte: a truncated file, a header claiming too many pixels, paths
// that leave the image folder, a missing folder, absolute paths; in check-data and in the
// training loader alike.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "common/failure.h"
#include "data/check_data.h"
#include "data/image.h"
#include "data/loader.h"
#include "tests/data/data_fixtures.h"

namespace sweep::data {
namespace {

using nlohmann::json;
using testing::TempDir;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A real PNG cut to its first 200 bytes: the header is intact, the pixels are not.
void write_truncated_png(const std::string& path) {
  testing::write_png(path, testing::gradient_image(64, 64));
  const std::string whole = read_bytes(path);
  ASSERT_GT(whole.size(), 200u);
  testing::write_text(path, whole.substr(0, 200));
}

// A PNG signature and an IHDR chunk claiming w x h pixels, and nothing else.
void write_png_header(const std::string& path, uint32_t w, uint32_t h) {
  std::string b = "\x89PNG\r\n\x1a\n";
  b += std::string("\0\0\0\x0d", 4) + "IHDR";
  for (uint32_t v : {w, h}) {
    for (int shift = 24; shift >= 0; shift -= 8) b += static_cast<char>((v >> shift) & 0xFF);
  }
  b += std::string("\x08\x02\0\0\0", 5) + std::string(4, '\0');  // RGB, 8 bits; CRC
  testing::write_text(path, b);
}

json image_sample(const std::string& id, const std::string& image) {
  return {{"id", id},
          {"image", image},
          {"conversations", json::array({{{"from", "human"}, {"value", "<image>\nWhat colour?"}},
                                         {{"from", "gpt"}, {"value", "Red."}}})}};
}

CheckReport check(const TempDir& dir, const json& data, const std::string& folder,
                  int64_t max_pixels = kDefaultMaxImagePixels) {
  testing::write_text(dir / "data.json", data.dump(1));
  CheckOptions opt;
  opt.image_folder = folder;
  opt.max_pixels = max_pixels;
  return check_data(dir / "data.json", opt);
}

std::vector<std::string> kinds(const CheckReport& report) {
  std::vector<std::string> out;
  for (const DataProblem& p : report.problems) out.push_back(p.kind);
  return out;
}

TEST(DecodeImage, TruncatedPngIsABadInputErrorNamingTheFile) {
  TempDir dir;
  write_truncated_png(dir / "cut.png");
  int w = 0, h = 0;
  std::string error;
  EXPECT_TRUE(read_image_header(dir / "cut.png", &w, &h, &error)) << error;
  try {
    decode_image(dir / "cut.png");
    FAIL() << "expected a throw";
  } catch (const Failure& f) {
    EXPECT_EQ(f.kind(), ErrorKind::kUser);
    EXPECT_EQ(f.error().message.rfind(dir / "cut.png" + ": cannot decode the image", 0), 0u)
        << f.what();
  }
}

TEST(DecodeImage, HugeHeaderIsTooLargeBeforeAnyPixelIsRead) {
  TempDir dir;
  write_png_header(dir / "huge.png", 60000, 60000);
  int w = 0, h = 0;
  std::string error;
  EXPECT_FALSE(read_image_header(dir / "huge.png", &w, &h, &error, kDefaultMaxImagePixels));
  EXPECT_EQ(error, "too large (60000 x 60000 pixels, limit 89478485)");
  try {
    decode_image(dir / "huge.png", 1000);
    FAIL() << "expected a throw";
  } catch (const Failure& f) {
    EXPECT_EQ(f.kind(), ErrorKind::kUser);
    EXPECT_EQ(f.error().message,
              dir / "huge.png" + ": too large (60000 x 60000 pixels, limit 1000)");
  }
  // Under the limit the size is a JPEG's too, read from its frame header.
  testing::write_jpeg(dir / "a.jpg", testing::solid_image(40, 30, {1, 2, 3}), 90);
  EXPECT_FALSE(read_image_header(dir / "a.jpg", &w, &h, &error, 1199));
  EXPECT_EQ(error, "too large (40 x 30 pixels, limit 1199)");
  EXPECT_TRUE(read_image_header(dir / "a.jpg", &w, &h, &error, 1200));
  EXPECT_EQ(decode_image(dir / "a.jpg", 1200).width, 40);
}

// Found by fuzz/fuzz_image: a PNG header with sides of 2^32 - 1 overflowed the 64-bit pixel count
// (undefined behaviour) in the size check.
TEST(DecodeImage, LargestPngHeaderIsTooLargeWithoutOverflow) {
  TempDir dir;
  write_png_header(dir / "max.png", 4294967295u, 4294967295u);
  int w = 0, h = 0;
  std::string error;
  EXPECT_FALSE(read_image_header(dir / "max.png", &w, &h, &error, kDefaultMaxImagePixels));
  EXPECT_EQ(error, "too large (4294967295 x 4294967295 pixels, limit 89478485)");
  EXPECT_EQ(w, INT32_MAX);
  // Exactly at the limit passes the size check.
  write_png_header(dir / "at.png", 1000, 1000);
  error.clear();
  (void)read_image_header(dir / "at.png", &w, &h, &error, 1000000);
  EXPECT_EQ(error.rfind("too large", 0), std::string::npos) << error;
  EXPECT_FALSE(read_image_header(dir / "at.png", &w, &h, &error, 999999));
  EXPECT_EQ(error, "too large (1000 x 1000 pixels, limit 999999)");
}

TEST(ImagePath, AbsolutePathsAreUsedAsGivenAndEscapesAreFound) {
  EXPECT_EQ(resolve_image_path("/data/images", "coco/1.jpg"), "/data/images/coco/1.jpg");
  EXPECT_EQ(resolve_image_path("/data/images", "/elsewhere/1.jpg"), "/elsewhere/1.jpg");
  EXPECT_EQ(resolve_image_path("", "coco/1.jpg"), "coco/1.jpg");
  EXPECT_TRUE(image_path_escapes_folder("../../../../etc/passwd"));
  EXPECT_TRUE(image_path_escapes_folder("coco/../../x.png"));
  EXPECT_FALSE(image_path_escapes_folder("coco/../x.png"));
  EXPECT_FALSE(image_path_escapes_folder("./coco/x..png"));
  EXPECT_FALSE(image_path_escapes_folder("/abs/../x.png"));
}

TEST(CheckDataImages, TruncatedPngIsAnErrorNamingTheFileAndTheCause) {
  TempDir dir;
  write_truncated_png(dir / "cut.png");
  const CheckReport report = check(dir, json::array({image_sample("a", "cut.png")}), dir.path());
  ASSERT_EQ(kinds(report), std::vector<std::string>{"image_not_decodable"})
      << report.to_json().dump(1);
  const DataProblem& p = report.problems[0];
  EXPECT_TRUE(p.error);
  EXPECT_EQ(p.message.rfind("image " + dir / "cut.png" + ": cannot decode the image: ", 0), 0u)
      << p.message;
  EXPECT_NE(p.hint.find("truncated or corrupt"), std::string::npos);
}

TEST(CheckDataImages, HugeHeaderIsTooLargeNotUnknown) {
  TempDir dir;
  write_png_header(dir / "huge.png", 60000, 60000);
  const CheckReport report = check(dir, json::array({image_sample("a", "huge.png")}), dir.path());
  ASSERT_EQ(kinds(report), std::vector<std::string>{"image_too_large"});
  EXPECT_EQ(report.problems[0].message,
            "image " + dir / "huge.png" + ": too large (60000 x 60000 pixels, limit 89478485)");
  testing::write_png(dir / "small.png", testing::solid_image(40, 30, {1, 2, 3}));
  EXPECT_EQ(kinds(check(dir, json::array({image_sample("a", "small.png")}), dir.path(), 1000)),
            std::vector<std::string>{"image_too_large"});
  EXPECT_TRUE(check(dir, json::array({image_sample("a", "small.png")}), dir.path(), 1200).ok());
}

TEST(CheckDataImages, PathLeavingTheFolderIsFlaggedAndNotRead) {
  TempDir dir;
  ::mkdir((dir / "images").c_str(), 0755);
  testing::write_png(dir / "outside.png", testing::solid_image(4, 4, {1, 2, 3}));
  const CheckReport report = check(dir,
                                   json::array({image_sample("a", "../outside.png"),
                                                image_sample("b", "../../../../etc/passwd")}),
                                   dir / "images");
  ASSERT_EQ(kinds(report),
            (std::vector<std::string>{"image_outside_folder", "image_outside_folder"}));
  EXPECT_EQ(report.problems[1].message, "image ../../../../etc/passwd leaves the image folder " +
                                            dir / "images" + "; it was not read");
  EXPECT_FALSE(report.ok());
}

TEST(CheckDataImages, MissingFolderIsReportedOnce) {
  TempDir dir;
  json data = json::array();
  for (int i = 0; i < 50; ++i)
    data.push_back(image_sample(std::to_string(i), std::to_string(i) + ".png"));
  const CheckReport report = check(dir, data, dir / "no-such-folder");
  ASSERT_EQ(kinds(report), std::vector<std::string>{"image_folder_missing"})
      << report.to_json().dump(1);
  EXPECT_EQ(report.problems[0].index, -1);
  EXPECT_EQ(report.problems[0].message, "image folder " + dir / "no-such-folder" +
                                            " does not exist (50 samples name an image under it)");
}

TEST(CheckDataImages, AbsolutePathIsUsedAsGiven) {
  TempDir dir;
  ::mkdir((dir / "images").c_str(), 0755);
  testing::write_png(dir / "elsewhere.png", testing::solid_image(4, 4, {1, 2, 3}));
  const CheckReport report =
      check(dir, json::array({image_sample("a", dir / "elsewhere.png")}), dir / "images");
  EXPECT_TRUE(report.ok()) << report.to_json().dump(1);
  // Even when the folder is missing, an absolute path is checked on its own.
  EXPECT_TRUE(
      check(dir, json::array({image_sample("a", dir / "elsewhere.png")}), dir / "nope").ok());
}

LoaderOptions loader_options(const std::string& folder) {
  LoaderOptions opt;
  opt.image_folder = folder;
  opt.image_size = 8;
  opt.shuffle = false;
  return opt;
}

TEST(BatchLoaderImages, AbsolutePathIsUsedAsGiven) {
  TempDir dir;
  ::mkdir((dir / "images").c_str(), 0755);
  testing::write_png(dir / "elsewhere.png", testing::solid_image(4, 4, {1, 2, 3}));
  BatchLoader loader(
      {testing::make_sample("a", dir / "elsewhere.png", {"<image>\nWhat colour?", "Red."})},
      testing::test_tokenizer(), loader_options(dir / "images"));
  const std::vector<LoadedSample> batch = loader.next();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].pixels.size(), 3u * 8 * 8);
}

// The worker's loader refuses an image over its pixel limit from the header, before decoding,
// as check-data does (a file replaced after the data check is bad input, not an out-of-memory).
TEST(BatchLoaderImages, ImageOverThePixelLimitIsABadInputErrorBeforeDecoding) {
  TempDir dir;
  testing::write_png(dir / "big.png", testing::solid_image(8, 8, {1, 2, 3}));
  LoaderOptions opt = loader_options(dir.path());
  opt.max_image_pixels = 63;
  BatchLoader loader({testing::make_sample("a", "big.png", {"<image>\nWhat colour?", "Red."})},
                     testing::test_tokenizer(), opt);
  try {
    loader.next();
    FAIL() << "expected a throw";
  } catch (const Failure& f) {
    EXPECT_EQ(f.kind(), ErrorKind::kUser);
    EXPECT_NE(f.error().message.find("too large (8 x 8 pixels, limit 63)"), std::string::npos)
        << f.what();
  }
  opt.max_image_pixels = 64;
  BatchLoader at_limit({testing::make_sample("a", "big.png", {"<image>\nWhat colour?", "Red."})},
                       testing::test_tokenizer(), opt);
  EXPECT_EQ(at_limit.next().size(), 1u);
}

TEST(BatchLoaderImages, TruncatedPngIsABadInputErrorNamingTheFile) {
  TempDir dir;
  write_truncated_png(dir / "cut.png");
  BatchLoader loader({testing::make_sample("a", "cut.png", {"<image>\nWhat colour?", "Red."})},
                     testing::test_tokenizer(), loader_options(dir.path()));
  try {
    loader.next();
    FAIL() << "expected a throw";
  } catch (const Failure& f) {
    EXPECT_EQ(f.kind(), ErrorKind::kUser);
    EXPECT_NE(f.error().message.find(dir / "cut.png"), std::string::npos) << f.what();
  }
}

}  // namespace
}  // namespace sweep::data
