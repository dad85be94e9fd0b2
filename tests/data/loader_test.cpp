#include "data/loader.h"

#include <gtest/gtest.h>

#include <set>

#include "data/image.h"
#include "tests/data/data_fixtures.h"

namespace sweep::data {
namespace {

using testing::make_sample;
using testing::TempDir;
using testing::test_tokenizer;

// 10 samples: even ones with a PNG image, odd ones text-only. Writes the images: call it before
// any loader reading them starts.
std::vector<Sample> dataset(const TempDir& dir) {
  std::vector<Sample> samples;
  for (int i = 0; i < 10; ++i) {
    const std::string image = i % 2 == 0 ? "img" + std::to_string(i) + ".png" : "";
    if (!image.empty()) {
      testing::write_png(dir / image,
                         testing::solid_image(6 + i, 4, {static_cast<uint8_t>(i * 20), 0, 0}));
    }
    samples.push_back(make_sample(std::to_string(i), image,
                                  {image.empty() ? "How many?" : "<image>\nWhat colour?", "Red."}));
  }
  return samples;
}

LoaderOptions options(const TempDir& dir, int batch, uint64_t seed) {
  LoaderOptions opt;
  opt.image_folder = dir.path();
  opt.image_size = 8;
  opt.batch_size = batch;
  opt.seed = seed;
  return opt;
}

std::vector<size_t> indices(const std::vector<LoadedSample>& batch) {
  std::vector<size_t> out;
  for (const LoadedSample& s : batch) out.push_back(s.index);
  return out;
}

TEST(BatchLoader, EachEpochVisitsEverySampleOnceWithASmallerLastBatch) {
  TempDir dir;
  BatchLoader loader(dataset(dir), test_tokenizer(), options(dir, 4, 1));
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  for (int epoch = 0; epoch < 2; ++epoch) {
    EXPECT_EQ(loader.epoch(), epoch);
    std::multiset<size_t> seen;
    for (size_t expected : {4u, 4u, 2u}) {
      const std::vector<LoadedSample> batch = loader.next();
      ASSERT_EQ(batch.size(), expected);
      for (const LoadedSample& s : batch) seen.insert(s.index);
    }
    EXPECT_EQ(seen, (std::multiset<size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  }
  EXPECT_EQ(loader.epoch(), 2);
}

TEST(BatchLoader, OrderIsSeededAndReshuffledEachEpoch) {
  TempDir dir;
  const std::vector<Sample> samples = dataset(dir);  // written once: loaders read the files
  BatchLoader a(samples, test_tokenizer(), options(dir, 2, 42));
  BatchLoader b(samples, test_tokenizer(), options(dir, 2, 42));
  BatchLoader c(samples, test_tokenizer(), options(dir, 2, 43));
  EXPECT_EQ(a.epoch_order(0), b.epoch_order(0));
  EXPECT_NE(a.epoch_order(0), a.epoch_order(1));
  EXPECT_NE(a.epoch_order(0), c.epoch_order(0));
  const std::vector<size_t> order = a.epoch_order(0);
  EXPECT_EQ(indices(a.next()), (std::vector<size_t>{order[0], order[1]}));
  LoaderOptions plain = options(dir, 2, 42);
  plain.shuffle = false;
  BatchLoader d(samples, test_tokenizer(), plain);
  EXPECT_EQ(indices(d.next()), (std::vector<size_t>{0, 1}));
}

TEST(BatchLoader, SamplesCarryTokensAndPreprocessedPixels) {
  TempDir dir;
  LoaderOptions opt = options(dir, 10, 0);
  opt.shuffle = false;
  BatchLoader loader(dataset(dir), test_tokenizer(), opt);
  const std::vector<LoadedSample> batch = loader.next();
  ASSERT_EQ(batch.size(), 10u);
  EXPECT_EQ(batch[0].id, "0");
  EXPECT_EQ(batch[0].pixels.size(), 3u * 8 * 8);
  EXPECT_TRUE(batch[0].tokens.has_image);
  EXPECT_EQ(std::count(batch[0].tokens.input_ids.begin(), batch[0].tokens.input_ids.end(),
                       kImageTokenIndex),
            1);
  EXPECT_TRUE(batch[1].pixels.empty());
  EXPECT_FALSE(batch[1].tokens.has_image);
  EXPECT_GT(batch[1].tokens.supervised_tokens, 0);
  // Sample 2 is 8x4 of (40, 0, 0): padded to 8x8 (rows 0-1 and 6-7 the mean colour), no resize.
  EXPECT_NEAR(batch[2].pixels[0], (122 / 255.0f - kClipMean[0]) / kClipStd[0], 1e-6);
  EXPECT_NEAR(batch[2].pixels[2 * 8], (40 / 255.0f - kClipMean[0]) / kClipStd[0], 1e-6);
  EXPECT_NEAR(batch[2].pixels[64 + 2 * 8], (0 - kClipMean[1]) / kClipStd[1], 1e-6);
}

TEST(BatchLoader, RestoredStateContinuesWithTheSameBatches) {
  TempDir dir;
  const std::vector<Sample> samples = dataset(dir);
  BatchLoader a(samples, test_tokenizer(), options(dir, 3, 7));
  for (int i = 0; i < 5; ++i) a.next();  // into the second epoch
  const nlohmann::json state = a.state();
  EXPECT_EQ(state["epoch"], 1);
  EXPECT_EQ(state["cursor"], 3);
  BatchLoader b(samples, test_tokenizer(), options(dir, 3, 7));
  b.next();
  b.restore(state);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(indices(a.next()), indices(b.next())) << "batch " << i;
  }
  EXPECT_EQ(a.state(), b.state());
}

TEST(BatchLoader, RestoreRejectsADifferentDataset) {
  TempDir dir;
  BatchLoader a(dataset(dir), test_tokenizer(), options(dir, 3, 7));
  nlohmann::json state = a.state();
  state["samples"] = 11;
  try {
    a.restore(state);
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "BatchLoader: the saved position is for 11 samples, the dataset has 10 (hint: "
              "resume with the data the run started with)");
  }
}

TEST(BatchLoader, UndecodableImageIsRethrownByNextNamingTheFile) {
  TempDir dir;
  std::vector<Sample> samples = dataset(dir);
  testing::write_text(dir / "img0.png", "garbage");
  LoaderOptions opt = options(dir, 1, 0);
  opt.shuffle = false;
  BatchLoader loader(std::move(samples), test_tokenizer(), opt);
  try {
    loader.next();
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "img0.png: cannot decode the image"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(indices(loader.next()), (std::vector<size_t>{1}));  // goes on after the bad one
  EXPECT_GE(loader.seconds_waited(), 0.0);
}

}  // namespace
}  // namespace sweep::data
