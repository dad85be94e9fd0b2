#include "data/llava_json.h"

#include <gtest/gtest.h>

#include "tests/data/data_fixtures.h"

namespace sweep::data {
namespace {

using testing::TempDir;
using testing::write_text;

std::string load_error(const std::string& path) {
  try {
    load_llava_json(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LoadLlavaJson, ReadsImageAndTextOnlySamples) {
  TempDir dir;
  write_text(dir / "d.json", R"([
    {"id": "000001", "image": "coco/1.jpg",
     "conversations": [{"from": "human", "value": "<image>\nWhat is on the table?"},
                       {"from": "gpt", "value": "A red cup."}]},
    {"id": 7, "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}],
     "source": "metadata that LLaVA ignores"}
  ])");
  const std::vector<Sample> samples = load_llava_json(dir / "d.json");
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].id, "000001");
  EXPECT_EQ(samples[0].image, "coco/1.jpg");
  ASSERT_EQ(samples[0].conversations.size(), 2u);
  EXPECT_EQ(samples[0].conversations[0].from, "human");
  EXPECT_EQ(samples[0].conversations[0].value, "<image>\nWhat is on the table?");
  EXPECT_EQ(samples[0].conversations[1].value, "A red cup.");
  EXPECT_EQ(samples[1].id, "7");
  EXPECT_EQ(samples[1].image, "");
}

TEST(LoadLlavaJson, FirstErrorNamesFileSampleIndexAndId) {
  TempDir dir;
  write_text(dir / "d.json", R"([
    {"id": "a", "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
    {"id": "000012", "image": "x.png",
     "conversations": [{"from": "human", "value": "no token"}, {"from": "gpt", "value": "A"}]}
  ])");
  EXPECT_EQ(load_error(dir / "d.json"),
            dir / "d.json" +
                ": sample 1 (id 000012): the first human turn (conversations[0]) has no <image> "
                "(hint: start the first question with \"<image>\\n\") (run `sweep check-data` "
                "for every problem of the file)");
}

TEST(LoadLlavaJson, TopLevelObjectIsNotAnArray) {
  TempDir dir;
  write_text(dir / "d.json", R"({"data": []})");
  EXPECT_EQ(load_error(dir / "d.json"),
            dir / "d.json" +
                ": the top level is not a JSON array (hint: LLaVA data is a JSON "
                "array of samples: [{...}, ...]) (run `sweep check-data` for every "
                "problem of the file)");
}

TEST(LoadLlavaJson, InvalidJsonReportsLineAndColumn) {
  TempDir dir;
  write_text(dir / "d.json", "[\n {\"id\": \"a\",}\n]");
  const std::string error = load_error(dir / "d.json");
  EXPECT_NE(error.find("parse error at line 2, column"), std::string::npos) << error;
}

TEST(LoadLlavaJson, MissingFileIsNamed) {
  EXPECT_EQ(load_error("/nonexistent/d.json"),
            "/nonexistent/d.json: cannot open /nonexistent/d.json (hint: check the path of the "
            "data file) (run `sweep check-data` for every problem of the file)");
}

TEST(LoadLlavaJson, ReadsTenThousandSamplesInFileOrderWithEveryField) {
  TempDir dir;
  {
    std::ofstream out(dir / "big.json");
    out << "[";
    for (int i = 0; i < 10000; ++i) {
      out << (i ? "," : "") << R"({"id": ")" << i << R"(", "image": "img/)" << i
          << R"(.png", "conversations": [{"from": "human", "value": "<image>\nWhat colour is the )"
          << "shape number " << i << R"(?"}, {"from": "gpt", "value": "Red."}]})";
    }
    out << "]";
  }
  const std::vector<Sample> samples = load_llava_json(dir / "big.json");
  ASSERT_EQ(samples.size(), 10000u);
  for (int i = 0; i < 10000; ++i) {
    const Sample& s = samples[i];
    ASSERT_EQ(s.id, std::to_string(i));
    ASSERT_EQ(s.image, "img/" + std::to_string(i) + ".png");
    ASSERT_EQ(s.conversations.size(), 2u) << s.id;
    ASSERT_EQ(s.conversations[0].from, "human") << s.id;
    ASSERT_EQ(s.conversations[0].value,
              "<image>\nWhat colour is the shape number " + std::to_string(i) + "?");
    ASSERT_EQ(s.conversations[1].from, "gpt") << s.id;
    ASSERT_EQ(s.conversations[1].value, "Red.") << s.id;
  }
}

}  // namespace
}  // namespace sweep::data
