#include "worker/train/lr_schedule.h"

#include <cmath>

#include <gtest/gtest.h>

namespace sweep::train {
namespace {

TEST(LrSchedule, WarmupStartsAtZeroAndRisesLinearly) {
  LrSchedule s(ScheduleKind::kCosine, 100, 4);
  EXPECT_DOUBLE_EQ(s.factor(0), 0.0);
  EXPECT_DOUBLE_EQ(s.factor(1), 0.25);
  EXPECT_DOUBLE_EQ(s.factor(3), 0.75);
  EXPECT_DOUBLE_EQ(s.factor(4), 1.0);
}

TEST(LrSchedule, CosineMatchesTransformersFormula) {
  LrSchedule s(ScheduleKind::kCosine, 100, 10);
  for (int step : {10, 30, 55, 99}) {
    double progress = (step - 10) / 90.0;
    EXPECT_NEAR(s.factor(step), 0.5 * (1 + std::cos(M_PI * progress)), 1e-12) << step;
  }
  EXPECT_NEAR(s.factor(55), 0.5, 1e-12);
  EXPECT_GE(s.factor(100), 0.0);
}

TEST(LrSchedule, CosineWithoutWarmupStartsAtPeak) {
  LrSchedule s(ScheduleKind::kCosine, 10, 0);
  EXPECT_DOUBLE_EQ(s.factor(0), 1.0);
  EXPECT_LT(s.factor(9), 0.05);
}

TEST(LrSchedule, LinearDecaysToZeroAtTheEnd) {
  LrSchedule s(ScheduleKind::kLinear, 20, 4);
  EXPECT_DOUBLE_EQ(s.factor(4), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(12), 0.5);
  EXPECT_DOUBLE_EQ(s.factor(20), 0.0);
}

TEST(LrSchedule, ConstantHoldsAfterWarmup) {
  LrSchedule s(ScheduleKind::kConstant, 20, 2);
  EXPECT_DOUBLE_EQ(s.factor(1), 0.5);
  EXPECT_DOUBLE_EQ(s.factor(2), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(19), 1.0);
}

TEST(LrSchedule, WarmupRatioRoundsUpLikeTransformers) {
  EXPECT_EQ(resolve_warmup_steps(100, 0.03, 0), 3);
  EXPECT_EQ(resolve_warmup_steps(120, 0.03, 0), 4);
  EXPECT_EQ(resolve_warmup_steps(60, 0.03, 0), 2);
  EXPECT_EQ(resolve_warmup_steps(60, 0.0, 0), 0);
  EXPECT_EQ(resolve_warmup_steps(60, 0.03, 7), 7);
}

TEST(LrSchedule, UnknownNameListsTheKnownOnes) {
  try {
    parse_schedule_kind("step");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "unknown lr_scheduler 'step': use one of cosine, linear, constant");
  }
  EXPECT_EQ(parse_schedule_kind("linear"), ScheduleKind::kLinear);
}

}  // namespace
}  // namespace sweep::train
