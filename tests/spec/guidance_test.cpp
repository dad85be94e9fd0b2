// The guidance warnings: each fires on a sweep built for it, stays silent on sane settings and
// at its threshold, and counts the jobs it concerns.
#include "orchestrator/spec/guidance.h"

#include <gtest/gtest.h>

#include "tests/spec/spec_test_util.h"

namespace sweep {
namespace {

using json = nlohmann::json;

struct Linted {
  std::vector<ExpandedJob> jobs;
  std::vector<Warning> warnings;
};

Linted lint(const std::string& body) {
  Linted out;
  auto spec = testing::parse(body);
  EXPECT_TRUE(spec.ok()) << (spec.ok() ? "" : spec.error().to_string());
  if (!spec.ok()) return out;
  auto jobs = expand_grid(*spec);
  EXPECT_TRUE(jobs.ok()) << (jobs.ok() ? "" : jobs.error().to_string());
  if (!jobs.ok()) return out;
  out.jobs = *jobs;
  out.warnings = guidance_warnings(*spec, out.jobs);
  return out;
}

std::vector<std::string> ids(const std::vector<Warning>& warnings) {
  std::vector<std::string> out;
  for (const Warning& w : warnings) out.push_back(w.id);
  return out;
}

// sweeps/r_alpha.yaml's settings.
const std::string kRAlpha =
    "train:\n"
    "  max_steps: 150\n"
    "  eval_every: 50\n"
    "  eval_samples: 100\n"
    "  train_projector: false\n"
    "grid:\n"
    "  lora_r: [4, 8, 16]\n"
    "  lora_alpha: {times: lora_r, values: [1, 2]}\n"
    "  learning_rate: [1.0e-3, 3.0e-3]\n"
    "  batch_size: [8]\n";

// LLaVA's scripts/v1_5/finetune_lora.sh on one GPU.
const std::string kLlavaRecipe =
    "train:\n"
    "  max_steps: 5200\n"
    "  eval_every: 500\n"
    "  eval_samples: 500\n"
    "  mm_projector_lr: 2.0e-5\n"
    "  gradient_accumulation_steps: 8\n"
    "grid:\n"
    "  lora_r: [64, 128, 256]\n"
    "  lora_alpha: {times: lora_r, values: [2]}\n"
    "  learning_rate: [1.0e-4, 2.0e-4]\n"
    "  batch_size: [16]\n"
    "objective: {metric: val_exact_match}\n";

TEST(Guidance, SaneSweepsAreSilent) {
  EXPECT_EQ(ids(lint(kRAlpha).warnings), std::vector<std::string>{});
  EXPECT_EQ(ids(lint(kLlavaRecipe).warnings), std::vector<std::string>{});
  EXPECT_EQ(ids(lint("").warnings), std::vector<std::string>{});  // the table's defaults
}

TEST(Guidance, ShippedSweepsWarnOnlyOnLrBatchsSmallestBatch) {
  for (const std::string name : {"r_alpha.yaml", "r_alpha_asha.yaml", "lr_batch.yaml",
                                 "lr_random.yaml", "llava-1.5-7b.yaml"}) {
    auto spec = load_sweep_spec(std::string(SWEEP_SOURCE_DIR) + "/sweeps/" + name);
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.error().to_string();
    auto jobs = expand_grid(*spec);
    ASSERT_TRUE(jobs.ok()) << name;
    const std::vector<Warning> warnings = guidance_warnings(*spec, *jobs);
    if (name != "lr_batch.yaml") {
      EXPECT_EQ(ids(warnings), std::vector<std::string>{}) << name;
      continue;
    }
    // lr_batch sweeps batch_size 4, 8, 16 on purpose; batch 4 is the noisy end it shows.
    EXPECT_EQ(ids(warnings), std::vector<std::string>{"small-effective-batch"});
    EXPECT_EQ(warnings[0].message,
              "batch_size x gradient_accumulation_steps below 8 in 4 of 12 jobs: 4 (4 x 1)");
  }
}

TEST(Guidance, LowLoraScaleFiresWithoutRsLora) {
  // PEFT's default alpha 16 at rank 128: alpha/r = 0.125.
  auto out = lint("grid:\n  lora_r: [8, 128]\n  lora_alpha: [16]\n");
  ASSERT_EQ(ids(out.warnings), std::vector<std::string>{"lora-scale-low"});
  const Warning& w = out.warnings[0];
  EXPECT_EQ(
      w.message,
      "LoRA scale alpha/r below 0.25 (no use_rslora) in 1 of 2 jobs: 0.125 (alpha 16, r 128)");
  EXPECT_EQ(w.job_hashes, std::vector<std::string>{out.jobs[1].hash});
  EXPECT_NE(w.reason.find("use_rslora"), std::string::npos);
  EXPECT_NE(w.source.find("rsLoRA"), std::string::npos);
}

TEST(Guidance, RsLoraTurnsTheScaleCheckOff) {
  auto out = lint("train:\n  use_rslora: true\ngrid:\n  lora_r: [128]\n  lora_alpha: [16, 2048]\n");
  EXPECT_EQ(ids(out.warnings), std::vector<std::string>{});
}

TEST(Guidance, HighLoraScaleFires) {
  auto out = lint("grid:\n  lora_r: [4]\n  lora_alpha: {times: lora_r, values: [2, 16]}\n");
  ASSERT_EQ(ids(out.warnings), std::vector<std::string>{"lora-scale-high"});
  EXPECT_EQ(out.warnings[0].message,
            "LoRA scale alpha/r above 8 (no use_rslora) in 1 of 2 jobs: 16 (alpha 64, r 4)");
}

TEST(Guidance, LoraScaleAtTheThresholdsIsSilent) {
  // QLoRA's r 64, alpha 16 (0.25) and alpha = 8r.
  auto out = lint("grid:\n  lora_r: [64]\n  lora_alpha: [16, 512]\n");
  EXPECT_EQ(ids(out.warnings), std::vector<std::string>{});
}

TEST(Guidance, LearningRatesOutsideTheLoraRangeFire) {
  auto out = lint("grid:\n  learning_rate: [1.0e-6, 2.0e-4, 3.0e-2]\n");
  ASSERT_EQ(ids(out.warnings),
            (std::vector<std::string>{"learning-rate-low", "learning-rate-high"}));
  EXPECT_EQ(out.warnings[0].message, "learning_rate below 1e-05 in 1 of 3 jobs: 1e-06");
  EXPECT_EQ(out.warnings[1].message, "learning_rate above 0.01 in 1 of 3 jobs: 0.03");
  EXPECT_EQ(out.warnings[1].job_hashes, std::vector<std::string>{out.jobs[2].hash});
}

TEST(Guidance, LearningRatesAtTheThresholdsAreSilent) {
  EXPECT_EQ(ids(lint("grid:\n  learning_rate: [1.0e-5, 1.0e-2]\n").warnings),
            std::vector<std::string>{});
}

TEST(Guidance, ProjectorFasterThanLoraFiresOnlyWhenTrained) {
  auto out = lint("train:\n  mm_projector_lr: 1.0e-3\ngrid:\n  learning_rate: [2.0e-4, 2.0e-3]\n");
  ASSERT_EQ(ids(out.warnings), std::vector<std::string>{"projector-lr-high"});
  EXPECT_EQ(out.warnings[0].message,
            "mm_projector_lr above learning_rate with train_projector in 1 of 2 jobs: "
            "0.001 > 0.0002");
  EXPECT_EQ(ids(lint("train:\n  mm_projector_lr: 1.0e-3\n  train_projector: false\n").warnings),
            std::vector<std::string>{});
  // Unset: the projector trains at learning_rate, not above it.
  EXPECT_EQ(ids(lint("train:\n  train_projector: true\n").warnings), std::vector<std::string>{});
}

TEST(Guidance, SmallEffectiveBatchCountsGradientAccumulation) {
  auto out = lint("grid:\n  batch_size: [1, 2, 8]\n  gradient_accumulation_steps: [1, 4]\n");
  ASSERT_EQ(ids(out.warnings), std::vector<std::string>{"small-effective-batch"});
  // 1x1, 2x1 and 1x4 are below 8; 2x4 = 8 is not.
  EXPECT_EQ(out.warnings[0].message,
            "batch_size x gradient_accumulation_steps below 8 in 3 of 6 jobs: 1 (1 x 1) (1 job), "
            "4 (1 x 4) (1 job), 2 (2 x 1) (1 job)");
}

TEST(Guidance, EvalEveryAtOrPastMaxStepsFires) {
  auto out = lint("train:\n  max_steps: 100\ngrid:\n  eval_every: [0, 50, 100, 500]\n");
  ASSERT_EQ(ids(out.warnings), std::vector<std::string>{"eval-every-past-max-steps"});
  EXPECT_EQ(out.warnings[0].message,
            "eval_every at or past max_steps in 2 of 4 jobs: 100 vs max_steps 100 (1 job), "
            "500 vs max_steps 100 (1 job)");
  EXPECT_EQ(out.warnings[0].job_hashes,
            (std::vector<std::string>{out.jobs[2].hash, out.jobs[3].hash}));
}

TEST(Guidance, FewEvalSamplesFiresForProportionObjectivesOnly) {
  const std::string grid = "grid:\n  eval_samples: [0, 20, 100]\n";
  auto exact = lint(grid + "objective: {metric: val_exact_match}\n");
  ASSERT_EQ(ids(exact.warnings), std::vector<std::string>{"few-eval-samples"});
  EXPECT_EQ(exact.warnings[0].message,
            "eval_samples below 100 for a proportion objective in 1 of 3 jobs: 20 "
            "(val_exact_match)");
  EXPECT_EQ(ids(lint(grid + "objective: {metric: val_token_acc}\n").warnings),
            std::vector<std::string>{"few-eval-samples"});
  EXPECT_EQ(ids(lint(grid + "objective: {metric: val_loss}\n").warnings),
            std::vector<std::string>{});
}

TEST(Guidance, AggregatesOneWarningPerIdWithCountsPerValue) {
  auto out = lint("grid:\n  lora_r: [8, 16]\n  learning_rate: [3.0e-2, 5.0e-2, 2.0e-4]\n");
  ASSERT_EQ(out.jobs.size(), 6u);
  ASSERT_EQ(ids(out.warnings), std::vector<std::string>{"learning-rate-high"});
  const Warning& w = out.warnings[0];
  EXPECT_EQ(w.message, "learning_rate above 0.01 in 4 of 6 jobs: 0.03 (2 jobs), 0.05 (2 jobs)");
  EXPECT_EQ(w.job_hashes, (std::vector<std::string>{out.jobs[0].hash, out.jobs[1].hash,
                                                    out.jobs[3].hash, out.jobs[4].hash}));
}

TEST(Guidance, SeveralWarningsComeInTheDocumentedOrder) {
  auto out = lint(
      "train:\n  max_steps: 10\n  eval_every: 20\n  batch_size: 2\ngrid:\n"
      "  learning_rate: [5.0e-2]\n  lora_r: [256]\n  lora_alpha: [8]\n");
  EXPECT_EQ(ids(out.warnings),
            (std::vector<std::string>{"lora-scale-low", "learning-rate-high",
                                      "small-effective-batch", "eval-every-past-max-steps"}));
}

TEST(Guidance, DuplicatesAreNotCounted) {
  auto out = lint(
      "grid:\n  learning_rate: [3.0e-2, 2.0e-4]\n"
      "include:\n  - {learning_rate: 3.0e-2}\n");
  ASSERT_EQ(out.jobs.size(), 3u);
  ASSERT_TRUE(out.jobs[2].is_duplicate());
  ASSERT_EQ(out.warnings.size(), 1u);
  EXPECT_EQ(out.warnings[0].message, "learning_rate above 0.01 in 1 of 2 jobs: 0.03");
}

TEST(Guidance, JobsMadeElsewhereWithPartialParamsUseTheDefaults) {
  // However the jobs were made (grid, sampled search), the checks read only their params.
  SweepSpec spec;
  ExpandedJob job;
  job.hash = "0123456789abcdef";
  job.params = {{"learning_rate", 0.5}, {"batch_size", 2}};
  const std::vector<Warning> warnings = guidance_warnings(spec, {job});
  EXPECT_EQ(ids(warnings),
            (std::vector<std::string>{"learning-rate-high", "small-effective-batch"}));
  EXPECT_EQ(warnings[0].job_hashes, std::vector<std::string>{"0123456789abcdef"});
}

TEST(Guidance, JsonFormHasEveryField) {
  auto out = lint("grid:\n  learning_rate: [3.0e-2]\n");
  ASSERT_EQ(out.warnings.size(), 1u);
  const json j = warning_to_json(out.warnings[0]);
  EXPECT_EQ(j["id"], "learning-rate-high");
  EXPECT_EQ(j["message"], out.warnings[0].message);
  EXPECT_FALSE(j["reason"].get<std::string>().empty());
  EXPECT_FALSE(j["source"].get<std::string>().empty());
  EXPECT_EQ(j["jobs"], json::array({out.jobs[0].hash}));
}

}  // namespace
}  // namespace sweep
