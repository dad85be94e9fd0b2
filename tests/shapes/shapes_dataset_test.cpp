#include "data/shapes/shapes_dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/shapes/png_check.h"

namespace fs = std::filesystem;

namespace sweep::data {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_all(path)); }

class ShapesDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("shapes_dataset_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(base_);
  }
  void TearDown() override { fs::remove_all(base_); }

  std::string dir(const std::string& name) const { return (base_ / name).string(); }

  static ShapesOptions small() {
    ShapesOptions opt;
    opt.train_images = 40;
    opt.val_images = 12;
    return opt;
  }

  fs::path base_;
};

std::set<std::string> images_of(const nlohmann::json& samples) {
  std::set<std::string> out;
  for (const auto& s : samples) out.insert(s.at("image").get<std::string>());
  return out;
}

TEST_F(ShapesDatasetTest, WritesEveryFileWithTheRequestedCounts) {
  const std::string root = dir("ds");
  write_shapes_dataset(root, small());
  const ShapesPaths p = shapes_paths(root);
  EXPECT_EQ(p.images, root + "/images");
  EXPECT_EQ(read_json(p.captions_train).size(), 40u);
  EXPECT_EQ(read_json(p.vqa_train).size(), 40u);
  EXPECT_EQ(read_json(p.vqa_val).size(), 12u);
  size_t pngs = 0;
  for (const auto& e : fs::directory_iterator(p.images)) pngs += e.path().extension() == ".png";
  EXPECT_EQ(pngs, 52u);
  EXPECT_TRUE(fs::exists(p.images + "/000000.png"));
  EXPECT_TRUE(fs::exists(p.images + "/000051.png"));
  // Nothing of the temp dir is left beside the root.
  for (const auto& e : fs::directory_iterator(base_)) EXPECT_EQ(e.path().filename(), "ds");
}

TEST_F(ShapesDatasetTest, SameSeedGivesIdenticalBytesAndAnotherSeedDiffers) {
  ShapesOptions other = small();
  other.seed = 99;
  write_shapes_dataset(dir("a"), small());
  write_shapes_dataset(dir("b"), small());
  write_shapes_dataset(dir("c"), other);
  const ShapesPaths a = shapes_paths(dir("a")), b = shapes_paths(dir("b")),
                    c = shapes_paths(dir("c"));
  for (const auto& [x, y] :
       {std::pair{a.captions_train, b.captions_train}, std::pair{a.vqa_train, b.vqa_train},
        std::pair{a.vqa_val, b.vqa_val}, std::pair{a.corpus, b.corpus},
        std::pair{a.images + "/000007.png", b.images + "/000007.png"}}) {
    EXPECT_EQ(read_all(x), read_all(y)) << x;
  }
  EXPECT_NE(read_all(a.vqa_train), read_all(c.vqa_train));
  EXPECT_NE(read_all(a.images + "/000007.png"), read_all(c.images + "/000007.png"));
}

TEST_F(ShapesDatasetTest, ValImagesAreDisjointFromTrainByFileAndByPixels) {
  ShapesOptions opt = small();
  opt.train_images = 300;
  opt.val_images = 60;
  write_shapes_dataset(dir("ds"), opt);
  const ShapesPaths p = shapes_paths(dir("ds"));
  std::set<std::string> train = images_of(read_json(p.captions_train));
  const std::set<std::string> vqa_train = images_of(read_json(p.vqa_train));
  const std::set<std::string> val = images_of(read_json(p.vqa_val));
  EXPECT_EQ(train, vqa_train);
  EXPECT_EQ(train.size(), 300u);
  EXPECT_EQ(val.size(), 60u);
  std::set<std::vector<uint8_t>> train_pixels;
  for (const std::string& f : train) {
    EXPECT_EQ(val.count(f), 0u) << f;
    train_pixels.insert(testing::decode_png(p.images + "/" + f).pixels);
  }
  for (const std::string& f : val) {
    EXPECT_EQ(train_pixels.count(testing::decode_png(p.images + "/" + f).pixels), 0u) << f;
  }
}

// The LLaVA rules of reference §2: <image> once at the front of the first human turn, roles
// alternating from human, non-empty short answers, images that exist and decode.
void expect_llava_samples(const nlohmann::json& samples, const std::string& images, int size) {
  for (const auto& s : samples) {
    const std::string id = s.at("id");
    const auto& conv = s.at("conversations");
    ASSERT_GE(conv.size(), 2u) << id;
    ASSERT_EQ(conv.size() % 2, 0u) << id;
    for (size_t i = 0; i < conv.size(); ++i) {
      const std::string value = conv[i].at("value");
      EXPECT_EQ(conv[i].at("from"), i % 2 == 0 ? "human" : "gpt") << id;
      EXPECT_FALSE(value.empty()) << id;
      EXPECT_EQ(value.find("<image>"), i == 0 ? 0 : std::string::npos) << id;
      EXPECT_EQ(value.rfind("<image>"), i == 0 ? 0 : std::string::npos) << id;
    }
    EXPECT_EQ(conv[0].at("value").get<std::string>().rfind("<image>\n", 0), 0u) << id;
    const testing::DecodedImage img =
        testing::decode_png(images + "/" + s.at("image").get<std::string>());
    EXPECT_EQ(img.width, size) << id;
    EXPECT_EQ(img.height, size) << id;
    EXPECT_EQ(img.channels, 3) << id;
  }
}

TEST_F(ShapesDatasetTest, SamplesFollowTheLlavaFormatAndImagesDecode) {
  ShapesOptions opt = small();
  opt.image_size = 48;
  write_shapes_dataset(dir("ds"), opt);
  const ShapesPaths p = shapes_paths(dir("ds"));
  expect_llava_samples(read_json(p.captions_train), p.images, 48);
  expect_llava_samples(read_json(p.vqa_train), p.images, 48);
  expect_llava_samples(read_json(p.vqa_val), p.images, 48);
}

TEST_F(ShapesDatasetTest, AnswersAreShortAndSomeTrainSamplesHaveTwoRounds) {
  ShapesOptions opt = small();
  opt.train_images = 200;
  write_shapes_dataset(dir("ds"), opt);
  const ShapesPaths p = shapes_paths(dir("ds"));
  int two_rounds = 0;
  for (const auto& s : read_json(p.vqa_train)) {
    two_rounds += s.at("conversations").size() == 4;
    for (size_t i = 1; i < s.at("conversations").size(); i += 2) {
      const std::string a = s.at("conversations")[i].at("value");
      EXPECT_EQ(a.find(' '), std::string::npos) << a;
    }
  }
  EXPECT_GT(two_rounds, 20);
  EXPECT_LT(two_rounds, 80);
  for (const auto& s : read_json(p.vqa_val)) EXPECT_EQ(s.at("conversations").size(), 2u);
}

// What the demo relies on: the base model, trained on the captions, has produced every answer
// word of the questions and has read the questions, but only ever answered with a description.
TEST_F(ShapesDatasetTest, CaptionsUseEveryAnswerWordAndHalfArePromptedWithAQuestion) {
  ShapesOptions opt = small();
  opt.train_images = 200;
  write_shapes_dataset(dir("ds"), opt);
  const ShapesPaths p = shapes_paths(dir("ds"));
  std::set<std::string> caption_words;
  int question_prompts = 0;
  for (const auto& s : read_json(p.captions_train)) {
    ASSERT_EQ(s.at("conversations").size(), 2u);
    const std::string prompt = s.at("conversations")[0].at("value").get<std::string>().substr(8);
    const std::string answer = s.at("conversations")[1].at("value");
    EXPECT_NE(answer.find(" shape"), std::string::npos) << answer;  // "two shapes: ..."
    std::istringstream words(answer);
    for (std::string w; words >> w;) {
      while (!w.empty() && (w.back() == ',' || w.back() == '.' || w.back() == ':')) w.pop_back();
      caption_words.insert(w);
    }
    question_prompts += prompt.back() == '?' && prompt != "What is in the picture?";
  }
  EXPECT_GT(question_prompts, 70);
  EXPECT_LT(question_prompts, 130);
  for (const auto& file : {p.vqa_train, p.vqa_val}) {
    for (const auto& s : read_json(file)) {
      for (size_t i = 1; i < s.at("conversations").size(); i += 2) {
        const std::string a = s.at("conversations")[i].at("value");
        EXPECT_TRUE(caption_words.count(a)) << a << " never occurs in a caption";
      }
    }
  }
}

TEST_F(ShapesDatasetTest, CorpusHoldsTheChatTemplateTextAndEveryAnswer) {
  write_shapes_dataset(dir("ds"), small());
  const ShapesPaths p = shapes_paths(dir("ds"));
  const std::string corpus = read_all(p.corpus);
  EXPECT_EQ(corpus.rfind("A chat between a curious user and an artificial intelligence assistant. "
                         "The assistant gives helpful, detailed, and polite answers to the user's "
                         "questions.\n",
                         0),
            0u);
  EXPECT_NE(corpus.find("USER:"), std::string::npos);
  EXPECT_NE(corpus.find("ASSISTANT:"), std::string::npos);
  EXPECT_EQ(corpus.find("<image>"), std::string::npos);
  for (const auto& s : read_json(p.captions_train)) {
    EXPECT_NE(corpus.find(s.at("conversations")[1].at("value").get<std::string>()),
              std::string::npos);
  }
  for (const auto& s : read_json(p.vqa_train)) {
    const std::string q = s.at("conversations")[0].at("value");
    EXPECT_NE(corpus.find(q.substr(8)), std::string::npos) << q;  // without "<image>\n"
  }
}

TEST_F(ShapesDatasetTest, RefusesANonEmptyRootAndBadOptionsNamingThem) {
  const std::string root = dir("full");
  fs::create_directories(root);
  std::ofstream(root + "/keep.txt") << "mine";
  try {
    write_shapes_dataset(root, small());
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(root + " already exists and is not empty"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(read_all(root + "/keep.txt"), "mine");
  ShapesOptions bad = small();
  bad.image_size = 16;
  try {
    write_shapes_dataset(dir("bad"), bad);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("image_size 16 (need >= 32)"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(dir("bad")));
}

TEST_F(ShapesDatasetTest, FillsAnEmptyRootDirectory) {
  fs::create_directories(dir("empty"));
  write_shapes_dataset(dir("empty"), small());
  EXPECT_EQ(read_json(shapes_paths(dir("empty")).vqa_val).size(), 12u);
}

// How long this takes is measured by bench/data/shapes_bench, not asserted here.
TEST_F(ShapesDatasetTest, DefaultOptionsGiveTheDemoSizes) {
  const ShapesOptions opt;
  EXPECT_EQ(opt.image_size, 64);
  write_shapes_dataset(dir("ds"), opt);
  const ShapesPaths p = shapes_paths(dir("ds"));
  EXPECT_EQ(read_json(p.captions_train).size(), 2000u);
  EXPECT_EQ(read_json(p.vqa_train).size(), 2000u);
  EXPECT_EQ(read_json(p.vqa_val).size(), 200u);
  size_t pngs = 0;
  for (const auto& e : fs::directory_iterator(p.images)) pngs += e.path().extension() == ".png";
  EXPECT_EQ(pngs, 2200u);
  const testing::DecodedImage last = testing::decode_png(p.images + "/002199.png");
  EXPECT_EQ(last.width, 64);
  EXPECT_EQ(last.height, 64);
}

}  // namespace
}  // namespace sweep::data
