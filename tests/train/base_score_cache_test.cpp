// The shared step-0 score: an entry written by one job is read by the next with the same key;
// every input of the key is a miss when it changes; a foreign or broken entry is a miss.
#include "worker/train/base_score_cache.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

namespace sweep::train {
namespace {
namespace fs = std::filesystem;

class BaseScoreCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("base_score_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "model");
    std::ofstream(root_ / "model/config.json") << "{}";
    std::ofstream(root_ / "model/model.safetensors") << "weights";
    std::ofstream(root_ / "val.json") << "[]";
    std::ofstream(root_ / "a.png") << "pixels";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string key(const nlohmann::json& settings = {{"max_samples", 100}},
                  const std::string& dtype = "Float") const {
    return base_score_key((root_ / "model").string(), (root_ / "val.json").string(),
                          {(root_ / "a.png").string(), ""}, settings, dtype, "cpu");
  }
  std::string cache_dir() const { return (root_ / "cache").string(); }

  fs::path root_;
};

TEST_F(BaseScoreCacheTest, ASavedScoreIsReadBackUnderTheSameKey) {
  BaseScoreCache first(cache_dir(), key());
  EXPECT_FALSE(first.load());
  first.save(BaseScore{8.5, 0.125, 0.0, 100, 412});
  auto hit = BaseScoreCache(cache_dir(), key()).load();
  ASSERT_TRUE(hit.has_value());
  EXPECT_DOUBLE_EQ(hit->val_loss, 8.5);
  EXPECT_DOUBLE_EQ(hit->val_token_acc, 0.125);
  EXPECT_EQ(hit->val_samples, 100);
  EXPECT_EQ(hit->val_tokens, 412);
}

TEST_F(BaseScoreCacheTest, EachInputOfTheKeyChangesIt) {
  const std::string before = key();
  EXPECT_EQ(key(), before);
  EXPECT_NE(key({{"max_samples", 50}}), before);
  EXPECT_NE(key({{"max_samples", 100}}, "BFloat16"), before);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a distinct mtime
  std::ofstream(root_ / "model/model.safetensors") << "other weights";
  const std::string new_weights = key();
  EXPECT_NE(new_weights, before);
  std::ofstream(root_ / "a.png") << "other pixels";
  EXPECT_NE(key(), new_weights);
}

TEST_F(BaseScoreCacheTest, AnEntryOfAnotherKeyOrACorruptOneIsAMiss) {
  BaseScoreCache cache(cache_dir(), key());
  cache.save(BaseScore{1, 0, 0, 1, 1});
  std::ofstream(cache.path()) << "{\"key\": \"something else\", \"val_loss\": 1}";
  EXPECT_FALSE(cache.load());
  std::ofstream(cache.path()) << "{not json";
  EXPECT_FALSE(cache.load());
}

TEST_F(BaseScoreCacheTest, AMissingFileInTheKeyIsAnError) {
  EXPECT_THROW(base_score_key((root_ / "model").string(), (root_ / "missing.json").string(), {}, {},
                              "Float", "cpu"),
               std::runtime_error);
}

}  // namespace
}  // namespace sweep::train
