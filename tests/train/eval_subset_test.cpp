// The evaluation subset: which validation samples a limited evaluation scores.
#include "worker/train/eval_subset.h"

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace sweep::train {
namespace {

TEST(EvalSubset, AllSamplesInOrderWhenNotLimited) {
  EXPECT_EQ(eval_subset(4, 0, 7), (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(eval_subset(4, 4, 7), (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(eval_subset(4, 9, 7), (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_TRUE(eval_subset(0, 3, 7).empty());
}

// Fixed draws: a change here changes which samples every limited evaluation scores (and the
// demo's recorded figures), on every platform alike.
TEST(EvalSubset, DrawsAreFixedBySeed) {
  EXPECT_EQ(eval_subset(10, 3, 0), (std::vector<size_t>{0, 2, 7}));
  EXPECT_EQ(eval_subset(20, 5, 42), (std::vector<size_t>{1, 2, 7, 11, 13}));
  EXPECT_EQ(eval_subset(100, 8, 7), (std::vector<size_t>{7, 27, 32, 33, 44, 54, 63, 68}));
}

TEST(EvalSubset, DistinctSortedIndicesInRange) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const std::vector<size_t> idx = eval_subset(50, 12, seed);
    ASSERT_EQ(idx.size(), 12u);
    EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end()));
    EXPECT_EQ(std::set<size_t>(idx.begin(), idx.end()).size(), 12u);
    EXPECT_LT(idx.back(), 50u);
  }
  EXPECT_NE(eval_subset(50, 12, 1), eval_subset(50, 12, 2));
}

TEST(EvalSubset, UniformBelowMapsTheStandardEngineWithoutModulo) {
  // mt19937_64 with seed 5489 is fixed by the standard: first output 14514284786278117030.
  std::mt19937_64 engine(5489);
  EXPECT_EQ(uniform_below(engine, 1000), 14514284786278117030ull % 1000);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(uniform_below(engine, 3), 3u);
}

}  // namespace
}  // namespace sweep::train
