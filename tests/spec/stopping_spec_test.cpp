// The early_stopping and budget sections: what they read, their defaults, and each error with its
// position.
#include <gtest/gtest.h>

#include "orchestrator/spec/stopping_spec.h"
#include "tests/spec/spec_test_util.h"

namespace sweep {
namespace {

using testing::parse;
using testing::parse_error;

TEST(StoppingSpec, AshaWithItsDefaults) {
  auto spec = parse("early_stopping: {type: asha, grace: 20k}\n");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  const EarlyStoppingSpec& es = spec->early_stopping;
  EXPECT_EQ(es.rule, EarlyStoppingSpec::Rule::kAsha);
  EXPECT_EQ(es.grace_tokens, 20000);
  EXPECT_DOUBLE_EQ(es.reduction_factor, 3);
  EXPECT_EQ(es.objective.metric, "val_loss");  // the sweep's objective
  EXPECT_FALSE(es.objective.maximize());
  EXPECT_EQ(spec_to_json(*spec)["early_stopping"]["grace_tokens"], 20000);
}

TEST(StoppingSpec, MedianWithItsOwnMetricAndInterval) {
  auto spec = parse(
      "objective: {metric: val_loss}\n"
      "early_stopping: {type: median, metric: val_exact_match, grace: 1.5M, interval: 500000, "
      "min_peers: 4}\n");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  const EarlyStoppingSpec& es = spec->early_stopping;
  EXPECT_EQ(es.rule, EarlyStoppingSpec::Rule::kMedian);
  EXPECT_EQ(es.objective.metric, "val_exact_match");
  EXPECT_TRUE(es.objective.maximize());
  EXPECT_EQ(es.grace_tokens, 1500000);
  EXPECT_EQ(es.interval_tokens, 500000);
  EXPECT_EQ(es.min_peers, 4);
}

TEST(StoppingSpec, NoSectionsMeanNoStoppingAndNoBudget) {
  auto spec = parse("");
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE(spec->early_stopping.enabled());
  EXPECT_FALSE(spec->budget.any());
  EXPECT_FALSE(spec_to_json(*spec).contains("early_stopping"));
}

TEST(StoppingSpec, BudgetCaps) {
  auto spec = parse("budget: {max_jobs: 8, max_tokens: 2M, max_steps: 900}\n");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  EXPECT_EQ(spec->budget.max_jobs, 8);
  EXPECT_EQ(spec->budget.max_tokens, 2000000);
  EXPECT_EQ(spec->budget.max_steps, 900);
}

TEST(StoppingSpec, PlanSummaryNamesTheRungsAndCaps) {
  auto spec = parse(
      "early_stopping: {type: asha, grace: 15k, reduction_factor: 3}\n"
      "budget: {max_jobs: 8, max_tokens: 1.5M}\n");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  EXPECT_EQ(stopping_summary(*spec),
            "early stopping: asha on val_loss (min): rungs at 15k, 45k, 135k, 405k, ... training "
            "tokens; each rung keeps the best 1/3\n"
            "budget: max_jobs 8, max_tokens 1.5M (no job starts once a cap is reached)\n");
  EXPECT_EQ(stopping_summary(*parse("")), "");
}

TEST(StoppingSpec, TokenCounts) {
  EXPECT_EQ(parse_token_count("20000"), 20000);
  EXPECT_EQ(parse_token_count("20k"), 20000);
  EXPECT_EQ(parse_token_count("1.5M"), 1500000);
  EXPECT_EQ(parse_token_count("2G"), 2000000000);
  EXPECT_EQ(parse_token_count("1e4"), 10000);
  EXPECT_FALSE(parse_token_count("20 tokens"));
  EXPECT_FALSE(parse_token_count("-5"));
  EXPECT_FALSE(parse_token_count("1.5"));  // not a whole number of tokens
}

TEST(StoppingSpecErrors, EachNamesItsPlace) {
  Error e = parse_error("early_stopping: {type: hyperband, grace: 10k}\n");
  EXPECT_EQ(e.message, "t.yaml:7:24: early_stopping.type = hyperband: must be one of asha, median");
  e = parse_error("early_stopping: {type: asha}\n");
  EXPECT_EQ(e.message, "t.yaml:7:17: missing required key 'early_stopping.grace'");
  e = parse_error("early_stopping: {type: asha, grace: lots}\n");
  EXPECT_EQ(e.message,
            "t.yaml:7:37: early_stopping.grace = lots: must be a positive number of training "
            "tokens");
  e = parse_error("early_stopping: {type: asha, grace: 10k, reduction_factor: 1}\n");
  EXPECT_EQ(e.message, "t.yaml:7:60: early_stopping.reduction_factor = 1: must be a number > 1");
  e = parse_error("early_stopping: {type: asha, grace: 10k, interval: 5k}\n");
  EXPECT_EQ(e.message, "t.yaml:7:42: unknown key 'interval' in early_stopping");
  e = parse_error("early_stopping: {type: median, grace: 10k, min_peers: 0}\n");
  EXPECT_EQ(e.message, "t.yaml:7:55: early_stopping.min_peers = 0: must be an integer >= 1");
  e = parse_error("early_stopping: {type: asha, grace: 10k, metric: val_acc}\n");
  EXPECT_EQ(e.message,
            "t.yaml:7:50: early_stopping.metric = val_acc: must be one of val_loss, "
            "val_token_acc, val_exact_match");
  e = parse_error("budget: {max_jobs: 0}\n");
  EXPECT_EQ(e.message, "t.yaml:7:20: budget.max_jobs = 0: must be an integer >= 1");
  e = parse_error("budget: {max_job: 3}\n");
  EXPECT_EQ(e.message, "t.yaml:7:10: unknown key 'max_job' in budget");
  EXPECT_EQ(e.hint, "did you mean max_jobs?");
}

}  // namespace
}  // namespace sweep
