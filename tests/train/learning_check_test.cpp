// The learning check's verdict (judge_learning) and when it runs (TrainParams and LearningCheck).
#include "worker/train/learning_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace sweep::train {
namespace {

LearningCheckInputs healthy() {
  LearningCheckInputs in;
  in.step = 4;
  in.lora_b_norm = 0.02;
  in.lora_grad_norm = 0.5;
  in.losses = {2.0, 1.9, 1.7, 1.6};
  return in;
}

TEST(LearningCheck, AMovingAdapterPasses) {
  const LearningCheckEvent e = judge_learning(healthy());
  EXPECT_TRUE(e.passed) << e.reason;
  EXPECT_EQ(e.reason, "");
  EXPECT_EQ(e.step, 4);
  EXPECT_DOUBLE_EQ(*e.loss_first, 1.95);  // mean of the first half
  EXPECT_DOUBLE_EQ(*e.loss_last, 1.65);   // mean of the second half
}

TEST(LearningCheck, BThatNeverLeftZeroFails) {
  LearningCheckInputs in = healthy();
  in.lora_b_norm = 0.0;
  const LearningCheckEvent e = judge_learning(in);
  EXPECT_FALSE(e.passed);
  EXPECT_EQ(e.reason.rfind("LoRA B norm is 0: the adapters never moved", 0), 0u) << e.reason;
}

TEST(LearningCheck, NoGradientFails) {
  LearningCheckInputs in = healthy();
  in.lora_grad_norm = 0.0;
  EXPECT_NE(judge_learning(in).reason.find("LoRA gradient norm is 0"), std::string::npos);
  in.lora_grad_norm.reset();
  EXPECT_EQ(judge_learning(in).reason, "no gradient reached the adapters");
}

TEST(LearningCheck, AFlatLossFailsAndEachReasonIsNamed) {
  LearningCheckInputs in = healthy();
  in.losses = {1.5, 1.5, 1.5, 1.5};
  in.lora_grad_norm = 0.0;
  const LearningCheckEvent e = judge_learning(in);
  EXPECT_FALSE(e.passed);
  EXPECT_NE(e.reason.find("LoRA gradient norm is 0"), std::string::npos) << e.reason;
  EXPECT_NE(e.reason.find("; the train loss did not move: mean 1.5 over the first 2 steps, 1.5 "
                          "over the last 2"),
            std::string::npos)
      << e.reason;
  // Just past the threshold (relative 1e-3 of the first half's mean) counts as moved.
  in.lora_grad_norm = 0.5;
  in.losses = {1.0, 1.0, 0.998, 0.998};
  EXPECT_TRUE(judge_learning(in).passed);
  in.losses = {1.0, 1.0, 0.9995, 0.9995};
  EXPECT_FALSE(judge_learning(in).passed);
}

TEST(LearningCheck, ANonFiniteLossOrNormFails) {
  LearningCheckInputs in = healthy();
  in.losses[2] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(judge_learning(in).reason.find("NaN"), std::string::npos);
  in = healthy();
  in.lora_b_norm = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(judge_learning(in).passed);
}

TEST(LearningCheck, OneStepJudgesTheNormsOnly) {
  LearningCheckInputs in = healthy();
  in.losses = {2.0};
  const LearningCheckEvent e = judge_learning(in);
  EXPECT_TRUE(e.passed);
  EXPECT_DOUBLE_EQ(*e.loss_first, 2.0);
  EXPECT_DOUBLE_EQ(*e.loss_last, 2.0);
}

TEST(LearningCheck, RunsATenthOfTheWayInUnlessSetOrOff) {
  TrainParams p;
  p.max_steps = 100;
  EXPECT_EQ(p.learning_check_step(), 10);
  p.max_steps = 12;
  EXPECT_EQ(p.learning_check_step(), 2);  // at least 2 steps, so the loss can move
  p.max_steps = 1;
  EXPECT_EQ(p.learning_check_step(), 1);
  p.max_steps = 100;
  p.learning_check_steps = 250;
  EXPECT_EQ(p.learning_check_step(), 100);
  p.learning_check_steps = 0;
  EXPECT_EQ(p.learning_check_step(), 0);
}

TEST(LearningCheck, RecordsUpToItsStepAndSkipsWhenResumedPastIt) {
  TrainParams p;
  p.max_steps = 30;  // check at step 3
  LearningCheck check(p, /*first_step=*/0);
  StepResult r;
  for (int step = 1; step <= 5; ++step) {
    r.step = step;
    EXPECT_EQ(check.record(r), step == 3) << step;
  }
  LearningCheck resumed(p, /*first_step=*/3);
  r.step = 4;
  EXPECT_FALSE(resumed.record(r));
  p.learning_check_steps = 0;
  LearningCheck off(p, 0);
  r.step = 3;
  EXPECT_FALSE(off.record(r));
}

}  // namespace
}  // namespace sweep::train
