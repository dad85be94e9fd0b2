#include <cmath>

#include <gtest/gtest.h>

#include "protocol/train_params.h"
#include "tests/spec/spec_test_util.h"

namespace sweep {
namespace {

using json = nlohmann::json;

std::vector<ExpandedJob> expand(const std::string& body) {
  auto spec = testing::parse(body);
  EXPECT_TRUE(spec.ok()) << (spec.ok() ? "" : spec.error().to_string());
  if (!spec.ok()) return {};
  auto jobs = expand_grid(*spec);
  EXPECT_TRUE(jobs.ok()) << (jobs.ok() ? "" : jobs.error().to_string());
  return jobs.ok() ? *jobs : std::vector<ExpandedJob>{};
}

const std::string kRAlpha =
    "grid:\n"
    "  lora_r: [4, 8, 16]\n"
    "  lora_alpha: {times: lora_r, values: [1, 2]}\n"
    "  learning_rate: [1.0e-3, 3.0e-3]\n"
    "  batch_size: [8]\n";

TEST(GridExpansion, CartesianProductWithTheFirstAxisSlowest) {
  auto jobs = expand(kRAlpha);
  ASSERT_EQ(jobs.size(), 12u);
  EXPECT_EQ(jobs[0].params["lora_r"], 4);
  EXPECT_EQ(jobs[0].params["learning_rate"], 1.0e-3);
  EXPECT_EQ(jobs[1].params["learning_rate"], 3.0e-3);
  EXPECT_EQ(jobs[4].params["lora_r"], 8);
  EXPECT_EQ(jobs[11].params["lora_r"], 16);
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(jobs[i].index, static_cast<int>(i));
    EXPECT_FALSE(jobs[i].is_duplicate());
    EXPECT_EQ(jobs[i].params["batch_size"], 8);
  }
}

TEST(GridExpansion, LinkedAlphaFollowsRank) {
  auto jobs = expand(kRAlpha);
  ASSERT_EQ(jobs.size(), 12u);
  for (const ExpandedJob& job : jobs) {
    const int r = job.params["lora_r"].get<int>();
    const double alpha = job.params["lora_alpha"].get<double>();
    EXPECT_TRUE(alpha == r || alpha == 2 * r) << job.params.dump();
    EXPECT_DOUBLE_EQ(job.lora_scale, alpha / r);
  }
  EXPECT_EQ(jobs[0].params["lora_alpha"], 4.0);    // r=4, k=1
  EXPECT_EQ(jobs[2].params["lora_alpha"], 8.0);    // r=4, k=2
  EXPECT_EQ(jobs[10].params["lora_alpha"], 32.0);  // r=16, k=2
}

TEST(GridExpansion, RsLoraScalesByTheSquareRootOfRank) {
  auto jobs = expand("train:\n  use_rslora: true\ngrid:\n  lora_r: [16]\n  lora_alpha: [8]\n");
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_DOUBLE_EQ(jobs[0].lora_scale, 2.0);
}

TEST(GridExpansion, ScalarGridValueIsOneValue) {
  auto spec = testing::parse("grid:\n  lora_r: [4, 8]\n  batch_size: 8\n");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(grid_shape(*spec), (std::vector<size_t>{2, 1}));
  EXPECT_EQ(expand_grid(*spec)->size(), 2u);
}

TEST(GridExpansion, NoGridIsOneJobOfDefaultsAndTrainKeys) {
  auto jobs = expand("train:\n  max_steps: 60\n");
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].params["max_steps"], 60);
  EXPECT_DOUBLE_EQ(jobs[0].lora_scale, 2.0);  // default alpha 16 / r 8
}

TEST(GridExpansion, EveryTableKeyWithADefaultIsResolved) {
  auto jobs = expand(kRAlpha);
  ASSERT_FALSE(jobs.empty());
  for (const ParamSpec& p : train_param_specs()) {
    if (p.default_value.is_null()) {
      EXPECT_FALSE(jobs[0].params.contains(p.name)) << p.name;
    } else {
      EXPECT_TRUE(jobs[0].params.contains(p.name)) << p.name;
    }
  }
  EXPECT_NO_THROW(TrainParams::from_json(jobs[0].params));
}

TEST(GridExpansion, AnyTrainKeyCanBeAGridKey) {
  auto jobs = expand(
      "grid:\n  lr_scheduler: [cosine, constant]\n  use_rslora: [false, true]\n"
      "  target_modules: [[q_proj, v_proj], [q_proj, k_proj, v_proj, o_proj]]\n");
  ASSERT_EQ(jobs.size(), 8u);
  EXPECT_EQ(jobs[0].params["lr_scheduler"], "cosine");
  EXPECT_EQ(jobs[0].params["target_modules"], json({"q_proj", "v_proj"}));
  EXPECT_EQ(jobs[1].params["target_modules"].size(), 4u);
  EXPECT_EQ(jobs[2].params["use_rslora"], true);
}

TEST(GridExpansion, ListValuedKeyWithOneListIsOneValue) {
  auto jobs = expand("grid:\n  target_modules: [q_proj, v_proj]\n");
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].params["target_modules"], json({"q_proj", "v_proj"}));
}

TEST(GridExpansion, ExcludeDropsMatchingPoints) {
  auto jobs = expand(kRAlpha + "exclude:\n  - {lora_r: 16, learning_rate: 3.0e-3}\n");
  ASSERT_EQ(jobs.size(), 10u);
  for (const ExpandedJob& job : jobs)
    EXPECT_FALSE(job.params["lora_r"] == 16 && job.params["learning_rate"] == 3.0e-3);
  EXPECT_EQ(jobs.back().index, 9);
}

TEST(GridExpansion, ExcludeMatchesLinkedValuesAndAlternatives) {
  // alpha 8 comes from r=4,k=2 and r=8,k=1; both go, for either learning rate.
  auto jobs = expand(kRAlpha + "exclude:\n  - {lora_alpha: 8}\n");
  EXPECT_EQ(jobs.size(), 8u);
  auto alternatives = expand(kRAlpha + "exclude:\n  - {lora_r: [4, 16]}\n");
  EXPECT_EQ(alternatives.size(), 4u);
}

TEST(GridExpansion, ExcludingEverythingIsAnError) {
  auto spec = testing::parse("grid:\n  lora_r: [4]\nexclude:\n  - {lora_r: 4}\n");
  ASSERT_TRUE(spec.ok());
  auto jobs = expand_grid(*spec);
  ASSERT_FALSE(jobs.ok());
  EXPECT_EQ(jobs.error().message, "t.yaml: every grid point is excluded");
}

TEST(GridExpansion, IncludeAddsExplicitPointsAfterTheGrid) {
  auto jobs = expand(kRAlpha +
                     "include:\n  - {lora_r: 32, lora_alpha: 16, learning_rate: 1.0e-4, "
                     "batch_size: 4}\n");
  ASSERT_EQ(jobs.size(), 13u);
  EXPECT_EQ(jobs[12].params["lora_r"], 32);
  EXPECT_EQ(jobs[12].params["batch_size"], 4);
  EXPECT_DOUBLE_EQ(jobs[12].lora_scale, 0.5);
  EXPECT_FALSE(jobs[12].is_duplicate());
}

TEST(GridExpansion, IncludePointEqualToAGridPointIsFlaggedAsDuplicate) {
  auto jobs = expand(kRAlpha +
                     "include:\n  - {lora_r: 8, lora_alpha: 16.0, learning_rate: 0.001, "
                     "batch_size: 8.0}\n");
  ASSERT_EQ(jobs.size(), 13u);
  EXPECT_EQ(jobs[12].duplicate_of, jobs[6].hash);  // r=8, k=2, lr=1e-3
  EXPECT_EQ(jobs[12].hash, jobs[6].hash);
}

TEST(GridExpansion, SameValueSpelledTwiceIsADuplicate) {
  auto jobs = expand("grid:\n  learning_rate: [1e-4, 0.0001, 2.0e-4]\n");
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_FALSE(jobs[0].is_duplicate());
  EXPECT_EQ(jobs[1].duplicate_of, jobs[0].hash);
  EXPECT_FALSE(jobs[2].is_duplicate());
}

TEST(GridExpansion, IntegralRealForAnIntKeyBecomesAnInt) {
  auto jobs = expand("grid:\n  lora_r: [8.0]\n  lora_alpha: [16]\n");
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_TRUE(jobs[0].params["lora_r"].is_number_integer());
  EXPECT_TRUE(jobs[0].params["lora_alpha"].is_number_float());
}

TEST(GridExpansion, SummaryNamesShapeDuplicatesIncludesAndExcludes) {
  auto spec = testing::parse(kRAlpha);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(expansion_summary(*spec, *expand_grid(*spec)),
            "12 jobs (0 duplicates) from a 3×2×2×1 grid");
  auto more = testing::parse(kRAlpha +
                             "include:\n  - {lora_r: 4, lora_alpha: 4, learning_rate: 1.0e-3, "
                             "batch_size: 8}\nexclude:\n  - {lora_r: 16}\n");
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(expansion_summary(*more, *expand_grid(*more)),
            "9 jobs (1 duplicate) from a 3×2×2×1 grid, 1 included, 4 excluded");
  auto none = testing::parse("");
  EXPECT_EQ(expansion_summary(*none, *expand_grid(*none)),
            "1 job (0 duplicates) from no grid (train: only)");
}

TEST(GridExpansion, TooLargeGridIsRefused) {
  std::string list = "[";
  for (int i = 1; i <= 101; ++i) list += (i > 1 ? ", " : "") + std::to_string(i);
  list += "]";
  auto spec = testing::parse("grid:\n  lora_r: " + list + "\n  seed: " + list +
                             "\n  max_steps: " + list + "\n");
  ASSERT_TRUE(spec.ok());
  auto jobs = expand_grid(*spec);
  ASSERT_FALSE(jobs.ok());
  EXPECT_EQ(jobs.error().message,
            "t.yaml: the grid has 1030301 points, more than the 10000 a sweep file may have");
  // 100 x 100 is the most there may be.
  std::string hundred = "[";
  for (int i = 1; i <= 100; ++i) hundred += (i > 1 ? ", " : "") + std::to_string(i);
  hundred += "]";
  auto most = testing::parse("grid:\n  lora_r: " + hundred + "\n  seed: " + hundred + "\n");
  ASSERT_TRUE(most.ok());
  auto limit = expand_grid(*most);
  ASSERT_TRUE(limit.ok()) << limit.error().message;
  EXPECT_EQ(limit->size(), 10000u);
  auto over = testing::parse("grid:\n  lora_r: " + hundred + "\n  seed: " + hundred +
                             "\n  max_steps: [1, 2]\n");
  ASSERT_TRUE(over.ok());
  EXPECT_FALSE(expand_grid(*over).ok());
}

}  // namespace
}  // namespace sweep
