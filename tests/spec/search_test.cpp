// Random and scrambled-Sobol search (`search:`): reproducible, prefix-stable trials whose values
// stay inside their ranges, the Sobol sequence itself, and the errors of malformed distributions.
#include <cmath>
#include <set>

#include <gtest/gtest.h>

#include "orchestrator/spec/sampler.h"
#include "orchestrator/spec/sobol.h"
#include "protocol/train_params.h"
#include "tests/spec/spec_test_util.h"

namespace sweep {
namespace {

using json = nlohmann::json;
using testing::parse;
using testing::parse_error;

// Lines 7-12 after the head: a sobol search over four keys.
std::string space(const std::string& type = "sobol", int n_trials = 16, int seed = 7) {
  return "search: {type: " + type + ", n_trials: " + std::to_string(n_trials) +
         ", seed: " + std::to_string(seed) +
         "}\n"
         "grid:\n"
         "  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\n"
         "  lora_dropout: {uniform: [0.0, 0.1]}\n"
         "  lora_r: {choice: [4, 8, 16, 32]}\n"
         "  lora_alpha: {times: lora_r, values: [1, 2]}\n"
         "  batch_size: {uniform: [2, 12]}\n";
}

std::vector<ExpandedJob> expand(const std::string& body) {
  auto spec = testing::parse(body);
  EXPECT_TRUE(spec.ok()) << (spec.ok() ? "" : spec.error().to_string());
  if (!spec.ok()) return {};
  auto jobs = expand_grid(*spec);
  EXPECT_TRUE(jobs.ok()) << (jobs.ok() ? "" : jobs.error().to_string());
  return jobs.ok() ? *jobs : std::vector<ExpandedJob>{};
}

std::vector<std::string> hashes(const std::vector<ExpandedJob>& jobs) {
  std::vector<std::string> out;
  for (const ExpandedJob& job : jobs) out.push_back(job.hash);
  return out;
}

TEST(SearchSampling, TheSameFileDrawsTheSameTrials) {
  for (const char* type : {"random", "sobol"}) {
    auto first = expand(space(type));
    ASSERT_EQ(first.size(), 16u) << type;
    EXPECT_EQ(hashes(first), hashes(expand(space(type)))) << type;
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i].index, static_cast<int>(i));
  }
}

TEST(SearchSampling, MoreTrialsOnlyAddTrials) {
  for (const char* type : {"random", "sobol"}) {
    auto five = expand(space(type, 5));
    auto ten = expand(space(type, 10));
    ASSERT_EQ(five.size(), 5u);
    ASSERT_EQ(ten.size(), 10u);
    for (size_t i = 0; i < five.size(); ++i) {
      EXPECT_EQ(five[i].hash, ten[i].hash) << type << " trial " << i;
      EXPECT_EQ(five[i].params, ten[i].params);
    }
  }
}

TEST(SearchSampling, AnotherSeedDrawsOtherPoints) {
  for (const char* type : {"random", "sobol"}) {
    auto a = hashes(expand(space(type, 8, 1)));
    auto b = hashes(expand(space(type, 8, 2)));
    std::set<std::string> shared(a.begin(), a.end());
    size_t common = 0;
    for (const std::string& h : b) common += shared.count(h);
    EXPECT_EQ(common, 0u) << type;
  }
}

TEST(SearchSampling, RandomAndSobolDrawDifferentPoints) {
  EXPECT_NE(hashes(expand(space("random"))), hashes(expand(space("sobol"))));
}

TEST(SearchSampling, ValuesStayInTheirRangesWithTheirKeysTypes) {
  for (const char* type : {"random", "sobol"}) {
    for (const ExpandedJob& job : expand(space(type, 200))) {
      const json& p = job.params;
      ASSERT_TRUE(p["learning_rate"].is_number_float());
      EXPECT_GE(p["learning_rate"].get<double>(), 1.0e-4);
      EXPECT_LE(p["learning_rate"].get<double>(), 1.0e-2);
      ASSERT_TRUE(p["lora_dropout"].is_number_float());
      EXPECT_GE(p["lora_dropout"].get<double>(), 0.0);
      EXPECT_LE(p["lora_dropout"].get<double>(), 0.1);
      ASSERT_TRUE(p["lora_r"].is_number_integer());
      EXPECT_EQ(std::set<int>({4, 8, 16, 32}).count(p["lora_r"].get<int>()), 1u);
      ASSERT_TRUE(p["batch_size"].is_number_integer()) << "an integer key is rounded";
      EXPECT_GE(p["batch_size"].get<int>(), 2);
      EXPECT_LE(p["batch_size"].get<int>(), 12);
      EXPECT_NO_THROW(TrainParams::from_json(p));
    }
  }
}

TEST(SearchSampling, SampledRealsKeepFourSignificantDigits) {
  for (const ExpandedJob& job : expand(space("random", 50))) {
    const double lr = job.params["learning_rate"].get<double>();
    EXPECT_EQ(lr, round_significant(lr, 4)) << lr;
    char text[32];
    std::snprintf(text, sizeof text, "%.3e", lr);
    EXPECT_EQ(lr, std::strtod(text, nullptr));
  }
  EXPECT_EQ(round_significant(0.000123456, 4), 0.0001235);
  EXPECT_EQ(round_significant(98765.4, 4), 98770.0);
  EXPECT_EQ(round_significant(0.0, 4), 0.0);
}

TEST(SearchSampling, LinkedAlphaIsTheMultiplierTimesTheDrawnRank) {
  std::set<double> multipliers;
  for (const ExpandedJob& job : expand(space("sobol", 32))) {
    const double r = job.params["lora_r"].get<double>();
    const double k = job.params["lora_alpha"].get<double>() / r;
    EXPECT_TRUE(k == 1 || k == 2) << job.params.dump();
    EXPECT_DOUBLE_EQ(job.lora_scale, k);
    multipliers.insert(k);
  }
  EXPECT_EQ(multipliers.size(), 2u);
}

TEST(SearchSampling, IntegerKeysTakeEveryIntegerOfTheirRange) {
  auto jobs = expand(
      "search: {type: sobol, n_trials: 64}\ngrid:\n  max_steps: {uniform: [10000, 10003]}\n");
  std::set<int> seen;
  for (const ExpandedJob& job : jobs) {
    ASSERT_TRUE(job.params["max_steps"].is_number_integer());
    seen.insert(job.params["max_steps"].get<int>());
  }
  EXPECT_EQ(seen, std::set<int>({10000, 10001, 10002, 10003}));
}

TEST(SearchSampling, LinkToASampledRangeMultipliesTheDrawnValue) {
  auto jobs = expand(
      "search: {type: random, n_trials: 20}\ngrid:\n  lora_r: {loguniform: [4, 64]}\n"
      "  lora_alpha: {times: lora_r, values: [2]}\n");
  ASSERT_EQ(jobs.size(), 20u);
  for (const ExpandedJob& job : jobs) {
    ASSERT_TRUE(job.params["lora_r"].is_number_integer());
    EXPECT_EQ(job.params["lora_alpha"].get<double>(), 2.0 * job.params["lora_r"].get<int>());
  }
}

TEST(SearchSampling, APlainListOrAScalarIsAChoice) {
  auto jobs = expand(
      "search: {type: random, n_trials: 40, seed: 3}\ngrid:\n  lora_r: [8, 16]\n"
      "  batch_size: 4\n  lr_scheduler: {choice: [cosine, constant]}\n");
  std::set<std::string> seen;
  for (const ExpandedJob& job : jobs) {
    EXPECT_EQ(job.params["batch_size"], 4);
    seen.insert(job.params["lora_r"].dump() + job.params["lr_scheduler"].get<std::string>());
  }
  EXPECT_EQ(seen.size(), 4u);
}

TEST(SearchSampling, RepeatedPointsOfAChoiceSpaceAreFlaggedAsDuplicates) {
  auto jobs = expand("search: {type: sobol, n_trials: 6}\ngrid:\n  lora_r: [4, 8]\n");
  ASSERT_EQ(jobs.size(), 6u);
  size_t duplicates = 0;
  for (const ExpandedJob& job : jobs) duplicates += job.is_duplicate() ? 1 : 0;
  EXPECT_EQ(duplicates, 4u);
  auto spec = testing::parse("search: {type: sobol, n_trials: 6}\ngrid:\n  lora_r: [4, 8]\n");
  EXPECT_EQ(expansion_summary(*spec, jobs),
            "6 jobs (4 duplicates) from 6 trials (sobol, seed 0) over 1 key");
}

TEST(SearchSampling, ExcludeDropsTrialsAndIncludeFollowsThem) {
  const std::string body = space("sobol", 16) +
                           "exclude:\n  - {lora_r: 32}\n"
                           "include:\n  - {learning_rate: 1.0e-3, lora_dropout: 0.05, lora_r: 8, "
                           "lora_alpha: 16, batch_size: 8}\n";
  auto all = expand(space("sobol", 16));
  auto jobs = expand(body);
  size_t kept = 0;
  for (const ExpandedJob& job : all) kept += job.params["lora_r"] != 32 ? 1 : 0;
  ASSERT_EQ(jobs.size(), kept + 1);
  for (size_t i = 0; i + 1 < jobs.size(); ++i) {
    EXPECT_NE(jobs[i].params["lora_r"], 32);
    EXPECT_EQ(jobs[i].hash, all[jobs[i].index].hash) << "trial numbers keep their points";
  }
  EXPECT_EQ(jobs.back().index, 16);
  EXPECT_EQ(jobs.back().params["learning_rate"], 1.0e-3);
  auto spec = testing::parse(body);
  EXPECT_EQ(expansion_summary(*spec, jobs),
            std::to_string(jobs.size()) + " jobs (0 duplicates) from 16 trials (sobol, seed 7) " +
                "over 5 keys, 1 included, " + std::to_string(16 - kept) + " excluded");
}

TEST(SearchSampling, SpecJsonCarriesTheSearchBlockAndTheDistributions) {
  auto spec = testing::parse(space("sobol", 12, 1));
  ASSERT_TRUE(spec.ok());
  json j = spec_to_json(*spec);
  EXPECT_EQ(j["search"], json::parse(R"({"type": "sobol", "n_trials": 12, "seed": 1})"));
  EXPECT_EQ(j["grid"][0], json::parse(R"({"key": "learning_rate", "loguniform": [1e-4, 1e-2]})"));
  EXPECT_EQ(j["grid"][1], json::parse(R"({"key": "lora_dropout", "uniform": [0.0, 0.1]})"));
  EXPECT_EQ(j["grid"][2], json::parse(R"({"key": "lora_r", "values": [4, 8, 16, 32]})"));
  EXPECT_EQ(spec_to_json(*testing::parse(""))["search"], json::parse(R"({"type": "grid"})"));
}

// The draws are part of every sampled job's identity: a change to the generator, the Sobol
// table, the scramble or the rounding would give every sampled sweep new jobs. These values were
// computed once; they must not change with the machine, the compiler or the build type.
TEST(SearchSampling, DrawsArePinned) {
  const std::string space4 =
      "grid:\n"
      "  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\n"
      "  lora_dropout: {uniform: [0.0, 0.1]}\n"
      "  lora_r: {choice: [4, 8, 16, 32]}\n";
  struct Draw {
    double learning_rate, lora_dropout;
    int lora_r;
  };
  const Draw random[4] = {{0.001655, 0.09634, 8},
                          {0.0007508, 0.07901, 4},
                          {0.001032, 0.04151, 16},
                          {0.001658, 0.006361, 4}};
  const Draw sobol[4] = {{0.0001863, 0.08812, 32},
                         {0.001799, 0.02036, 8},
                         {0.005956, 0.05784, 16},
                         {0.0008305, 0.04248, 4}};
  for (const char* type : {"random", "sobol"}) {
    auto jobs =
        expand("search: {type: " + std::string(type) + ", n_trials: 4, seed: 7}\n" + space4);
    ASSERT_EQ(jobs.size(), 4u);
    const Draw* expected = std::string(type) == "random" ? random : sobol;
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(jobs[i].params["learning_rate"], expected[i].learning_rate) << type << " " << i;
      EXPECT_EQ(jobs[i].params["lora_dropout"], expected[i].lora_dropout) << type << " " << i;
      EXPECT_EQ(jobs[i].params["lora_r"], expected[i].lora_r) << type << " " << i;
    }
  }
}

TEST(SobolSequence, UnscrambledPointsAreTheKnownSequence) {
  const double first[8][3] = {{0, 0, 0},
                              {0.5, 0.5, 0.5},
                              {0.75, 0.25, 0.25},
                              {0.25, 0.75, 0.75},
                              {0.375, 0.375, 0.625},
                              {0.875, 0.875, 0.125},
                              {0.625, 0.125, 0.875},
                              {0.125, 0.625, 0.375}};
  for (uint32_t i = 0; i < 8; ++i)
    for (int d = 0; d < 3; ++d)
      EXPECT_EQ(sobol_coordinate(i, d) / 4294967296.0, first[i][d])
          << "point " << i << " dim " << d;
}

// The first 2^m points of a (scrambled) Sobol sequence put exactly one point in each interval
// [k/2^m, (k+1)/2^m) of every coordinate.
TEST(SobolSequence, EveryDimensionIsStratifiedScrambledOrNot) {
  constexpr uint32_t kPoints = 256;
  for (int d = 0; d < kSobolMaxDimensions; ++d) {
    for (uint64_t seed : {0ull, 1ull, 12345ull}) {
      std::vector<int> plain(kPoints, 0), scrambled(kPoints, 0);
      for (uint32_t i = 0; i < kPoints; ++i) {
        ++plain[sobol_coordinate(i, d) >> 24];
        ++scrambled[scrambled_sobol_coordinate(i, d, seed) >> 24];
      }
      for (uint32_t k = 0; k < kPoints; ++k) {
        ASSERT_EQ(plain[k], 1) << "dim " << d << " interval " << k;
        ASSERT_EQ(scrambled[k], 1) << "dim " << d << " seed " << seed << " interval " << k;
      }
    }
  }
}

// Two-dimensional projections of the unscrambled points: of the first 2^m points, each box
// [a/2^j, (a+1)/2^j) x [b/2^(m-j), ...) holds the same number of points when m is large against
// the net's t; with 4 x 4 boxes and 1024 points every box holds exactly 64.
TEST(SobolSequence, PairsOfDimensionsCoverTheSquareEvenly) {
  for (int d = 0; d + 1 < kSobolMaxDimensions; ++d) {
    int boxes[4][4] = {};
    for (uint32_t i = 0; i < 1024; ++i)
      ++boxes[sobol_coordinate(i, d) >> 30][sobol_coordinate(i, d + 1) >> 30];
    for (auto& row : boxes)
      for (int count : row) EXPECT_EQ(count, 64) << "dims " << d << ", " << d + 1;
  }
}

TEST(SobolSequence, ScramblingMovesThePointsAndDependsOnTheSeed) {
  int moved = 0, differ = 0;
  for (uint32_t i = 0; i < 64; ++i) {
    moved += scrambled_sobol_coordinate(i, 0, 1) != sobol_coordinate(i, 0) ? 1 : 0;
    differ += scrambled_sobol_coordinate(i, 0, 1) != scrambled_sobol_coordinate(i, 0, 2) ? 1 : 0;
  }
  EXPECT_GT(moved, 60);
  EXPECT_GT(differ, 60);
}

TEST(SearchSampling, RandomDrawsAreRoughlyUniform) {
  // 2000 trials of one uniform key: 10 bins of expected 200 each; 5 sigma is about +-67.
  auto jobs = expand(
      "search: {type: random, n_trials: 2000, seed: 11}\ngrid:\n"
      "  lora_dropout: {uniform: [0.0, 0.5]}\n");
  ASSERT_EQ(jobs.size(), 2000u);
  int bins[10] = {};
  double sum = 0;
  for (const ExpandedJob& job : jobs) {
    const double x = job.params["lora_dropout"].get<double>();
    ++bins[std::min(9, static_cast<int>(x / 0.05))];
    sum += x;
  }
  for (int count : bins) {
    EXPECT_GT(count, 133);
    EXPECT_LT(count, 267);
  }
  EXPECT_NEAR(sum / 2000, 0.25, 0.01);
}

TEST(SearchSampling, SobolTrialsSplitALogRangeEvenly) {
  // 64 sobol trials of a log range over two decades: 32 in each decade (one per 1/64 of the
  // log range), up to rounding at the boundary.
  auto jobs = expand(
      "search: {type: sobol, n_trials: 64, seed: 5}\ngrid:\n"
      "  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\n");
  int low = 0;
  for (const ExpandedJob& job : jobs) low += job.params["learning_rate"].get<double>() < 1e-3;
  EXPECT_NEAR(low, 32, 1);
}

TEST(SearchSampling, ShippedRandomSweepFileIsValid) {
  auto spec = load_sweep_spec(std::string(SWEEP_SOURCE_DIR) + "/sweeps/lr_random.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  EXPECT_TRUE(spec->search.sampled());
  auto jobs = expand_grid(*spec);
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), static_cast<size_t>(spec->search.n_trials));
  EXPECT_TRUE(spec->early_stopping.enabled());
}

// Errors: lines 7 (search) and 8-9 (grid: and its first key) after the six-line head.
TEST(SearchErrors, LogUniformBoundMustBePositive) {
  Error e = parse_error(
      "search: {type: random, n_trials: 4}\ngrid:\n"
      "  learning_rate: {loguniform: [-1.0e-4, 1.0e-2]}\n");
  EXPECT_EQ(e.kind, ErrorKind::kUser);
  EXPECT_EQ(e.message,
            "t.yaml:9:32: grid.learning_rate.loguniform[0] = -1.0e-4: a loguniform bound must "
            "be > 0");
  EXPECT_EQ(parse_error("search: {type: random, n_trials: 4}\ngrid:\n"
                        "  learning_rate: {loguniform: [0, 1.0e-2]}\n")
                .message,
            "t.yaml:9:32: grid.learning_rate.loguniform[0] = 0: a loguniform bound must be > 0");
}

TEST(SearchErrors, LowAboveHighIsRejected) {
  Error e = parse_error(
      "search: {type: sobol, n_trials: 4}\ngrid:\n  lora_dropout: {uniform: [0.1, 0.0]}\n");
  EXPECT_EQ(e.message, "t.yaml:9:27: grid.lora_dropout.uniform = [0.1,0.0]: low is above high");
  EXPECT_EQ(e.hint, "write the range as [low, high]: [0.0, 0.1]");
}

TEST(SearchErrors, RangeMustBeTwoNumbers) {
  EXPECT_EQ(parse_error("search: {type: sobol, n_trials: 4}\ngrid:\n"
                        "  lora_dropout: {uniform: [0.1]}\n")
                .message,
            "t.yaml:9:27: grid.lora_dropout.uniform = [0.1]: must be [low, high], two numbers");
  EXPECT_EQ(parse_error("search: {type: sobol, n_trials: 4}\ngrid:\n"
                        "  lora_dropout: {uniform: [0.0, high]}\n")
                .message,
            "t.yaml:9:33: grid.lora_dropout.uniform[1] = high: must be a number");
}

TEST(SearchErrors, RangeMustBeAllowedForTheKey) {
  Error e = parse_error(
      "search: {type: sobol, n_trials: 4}\ngrid:\n  lora_dropout: {uniform: [0.0, 1.0]}\n");
  EXPECT_EQ(e.message,
            "t.yaml:9:33: grid.lora_dropout.uniform[1] = 1.0: must be a number in [0, 1)");
  EXPECT_EQ(parse_error("search: {type: sobol, n_trials: 4}\ngrid:\n"
                        "  lora_r: {uniform: [0, 8]}\n")
                .message,
            "t.yaml:9:22: grid.lora_r.uniform[0] = 0: must be an integer >= 1");
  EXPECT_EQ(parse_error("search: {type: sobol, n_trials: 4}\ngrid:\n"
                        "  lora_r: {uniform: [4.2, 4.8]}\n")
                .message,
            "t.yaml:9:21: grid.lora_r.uniform = [4.2,4.8]: holds no integer, and lora_r is an "
            "integer");
}

TEST(SearchErrors, EmptyChoiceIsRejected) {
  Error e = parse_error("search: {type: random, n_trials: 4}\ngrid:\n  lora_r: {choice: []}\n");
  EXPECT_EQ(e.message, "t.yaml:9:20: grid.lora_r.choice is an empty list");
  EXPECT_EQ(e.hint, "give at least one value, or remove the key from grid:");
}

TEST(SearchErrors, UnknownDistributionNamesTheClosest) {
  Error e = parse_error(
      "search: {type: random, n_trials: 4}\ngrid:\n"
      "  learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}\n");
  EXPECT_EQ(e.message, "t.yaml:9:19: unknown distribution 'log_uniform' in grid.learning_rate");
  EXPECT_EQ(e.hint, "did you mean loguniform?");
  EXPECT_EQ(parse_error("search: {type: random, n_trials: 4}\ngrid:\n"
                        "  lr_scheduler: {uniform: [0, 1]}\n")
                .message,
            "t.yaml:9:18: grid.lr_scheduler.uniform: lr_scheduler is not a number");
}

TEST(SearchErrors, DistributionUnderAGridSearchIsRejected) {
  Error e = parse_error("grid:\n  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\n");
  EXPECT_EQ(e.message,
            "t.yaml:8:18: grid.learning_rate: loguniform is a distribution, which needs search "
            "type random or sobol");
  EXPECT_EQ(parse_error("search: {type: grid}\ngrid:\n  lora_r: {choice: [4, 8]}\n").message,
            "t.yaml:9:11: grid.lora_r: choice is a distribution, which needs search type random "
            "or sobol");
}

TEST(SearchErrors, TrialCountIsRequiredAndPositive) {
  Error e = parse_error("search: {type: sobol, seed: 1}\ngrid:\n  lora_r: [4, 8]\n");
  EXPECT_EQ(e.message, "t.yaml:7:9: missing required key 'search.n_trials'");
  EXPECT_EQ(e.hint, "e.g. search: {type: sobol, n_trials: 16, seed: 0}");
  EXPECT_EQ(parse_error("search: {type: sobol, n_trials: 0}\ngrid:\n  lora_r: [4, 8]\n").message,
            "t.yaml:7:33: search.n_trials = 0: must be an integer >= 1");
}

TEST(SearchErrors, GridSearchTakesNoTrialCountOrSeed) {
  Error e = parse_error("search: {type: grid, n_trials: 4}\ngrid:\n  lora_r: [4, 8]\n");
  EXPECT_EQ(e.message,
            "t.yaml:7:32: search.n_trials is for type random or sobol; a grid takes every point");
}

TEST(SearchErrors, SeedMustBeANonNegativeInteger) {
  EXPECT_EQ(
      parse_error("search: {type: random, n_trials: 4, seed: 1.5}\ngrid:\n  lora_r: [4]\n").message,
      "t.yaml:7:43: search.seed = 1.5: must be an integer >= 0");
}

TEST(SearchErrors, UnknownSearchTypeNamesTheClosest) {
  Error e = parse_error("search: {type: sobl, n_trials: 4}\ngrid:\n  lora_r: [4]\n");
  EXPECT_EQ(e.message, "t.yaml:7:16: search.type = sobl: must be one of grid, random, sobol");
  EXPECT_EQ(e.hint, "did you mean sobol?");
}

TEST(SearchErrors, FractionalMultiplierOfASampledIntegerRangeIsRejected) {
  Error e = parse_error(
      "search: {type: random, n_trials: 4}\ngrid:\n  lora_r: {uniform: [4, 16]}\n"
      "  batch_size: {times: lora_r, values: [0.5]}\n");
  EXPECT_EQ(e.message,
            "t.yaml:10:40: grid.batch_size = 0.5 × lora_r: a fractional multiplier of a sampled "
            "range gives fractions, and batch_size is an integer");
}

TEST(SearchErrors, SobolTakesAtMostItsDimensions) {
  std::string grid = "grid:\n";
  int keys = 0;
  for (const ParamSpec& p : train_param_specs()) {  // every key, at its default (or a number)
    const json value = p.default_value.is_null() ? json(1.0e-4) : p.default_value;
    if (keys == kSobolMaxDimensions + 1 || check_param_value(p, value) != "") continue;
    grid += "  " + p.name + ": " + value.dump() + "\n";
    ++keys;
  }
  ASSERT_EQ(keys, kSobolMaxDimensions + 1);
  Error e = parse_error("search: {type: sobol, n_trials: 4}\n" + grid);
  EXPECT_EQ(e.message,
            "t.yaml:9:3: search type sobol takes at most 32 grid keys, this grid has 33");
  EXPECT_TRUE(parse("search: {type: random, n_trials: 4}\n" + grid).ok());
}

TEST(SearchErrors, SampledSearchNeedsAGrid) {
  EXPECT_EQ(parse_error("search: {type: random, n_trials: 4}\n").message,
            "t.yaml:7:16: search type random needs keys to sample in grid:");
}

}  // namespace
}  // namespace sweep
