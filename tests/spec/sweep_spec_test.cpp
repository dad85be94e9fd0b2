#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/spec/spec_test_util.h"

namespace sweep {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

TEST(SweepSpecParse, ReadsEverySection) {
  auto spec = testing::parse(
      "train:\n  max_steps: 60\n  lora_dropout: 0.1\n  mm_projector_lr: 2.0e-5\n"
      "grid:\n  lora_r: [4, 8]\n  lora_alpha: {times: lora_r, values: [1, 2]}\n"
      "objective: {metric: val_exact_match}\n"
      "resources: {gpus: [0, 1], jobs_per_gpu: 2, threads_per_job: 4}\n"
      "retries: 2\nmax_job_time: 1h30m\n"
      "worker: {command: [/opt/sweep-worker, --verbose]}\n");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  EXPECT_EQ(spec->name, "t");
  EXPECT_EQ(spec->base_model, "builtin:tiny-llava");
  EXPECT_EQ(spec->data.val, "builtin:shapes/vqa_val.json");
  EXPECT_EQ(spec->train,
            json::parse(R"({"max_steps": 60, "lora_dropout": 0.1, "mm_projector_lr": 2e-5})"));
  ASSERT_EQ(spec->grid.size(), 2u);
  EXPECT_EQ(spec->grid[1].key, "lora_alpha");
  EXPECT_EQ(spec->grid[1].times, "lora_r");
  EXPECT_EQ(spec->objective.metric, "val_exact_match");
  EXPECT_TRUE(spec->objective.maximize());
  EXPECT_EQ(spec->resources.gpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(spec->resources.total_slots(), 4);
  EXPECT_EQ(spec->resources.threads_per_job, 4);
  EXPECT_EQ(spec->retries, 2);
  EXPECT_DOUBLE_EQ(spec->max_job_time_s, 5400);
  EXPECT_EQ(spec->worker_command, (std::vector<std::string>{"/opt/sweep-worker", "--verbose"}));
}

TEST(SweepSpecParse, DefaultsForOptionalSections) {
  auto spec = testing::parse("");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->objective.metric, "val_loss");
  EXPECT_FALSE(spec->objective.maximize());
  EXPECT_FALSE(spec->resources.uses_gpus());
  EXPECT_EQ(spec->resources.total_slots(), 1);
  EXPECT_EQ(spec->retries, 0);
  EXPECT_EQ(spec->max_job_time_s, 0);
  EXPECT_TRUE(spec->worker_command.empty());
  EXPECT_TRUE(spec->grid.empty());
}

TEST(SweepSpecParse, ObjectiveModeDefaultsByMetric) {
  EXPECT_STREQ(to_string(testing::parse("objective: {metric: val_token_acc}\n")->objective.mode),
               "max");
  EXPECT_STREQ(to_string(testing::parse("objective: {metric: val_loss}\n")->objective.mode), "min");
}

TEST(SweepSpecParse, DurationsInSecondsOrUnits) {
  EXPECT_DOUBLE_EQ(testing::parse("max_job_time: 90\n")->max_job_time_s, 90);
  EXPECT_DOUBLE_EQ(testing::parse("max_job_time: 30m\n")->max_job_time_s, 1800);
  EXPECT_DOUBLE_EQ(testing::parse("max_job_time: 2h\n")->max_job_time_s, 7200);
  EXPECT_DOUBLE_EQ(testing::parse("max_job_time: 1.5h\n")->max_job_time_s, 5400);
}

TEST(SweepSpecParse, PathsResolveAgainstTheSpecFileDirectory) {
  auto spec = parse_sweep_spec(
      "name: p\nbase_model: ../models/tiny\n"
      "data: {train: data/train.json, val: /abs/val.json, image_folder: builtin:shapes/images}\n",
      "/work/sweeps/p.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  EXPECT_EQ(spec->base_model, "/work/models/tiny");
  EXPECT_EQ(spec->data.train, "/work/sweeps/data/train.json");
  EXPECT_EQ(spec->data.val, "/abs/val.json");
  EXPECT_EQ(spec->data.image_folder, "builtin:shapes/images");
}

TEST(SweepSpecParse, ExplicitNullUnsetsAKeyWithoutDefault) {
  auto spec = testing::parse("train:\n  mm_projector_lr: null\n");
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE(spec->train.contains("mm_projector_lr"));
}

TEST(SweepSpecLoad, ReadsAFileAndNamesItInErrors) {
  const fs::path dir = fs::temp_directory_path() / ("spec_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path good = dir / "good.yaml";
  std::ofstream(good) << testing::kHead << "grid:\n  lora_r: [4, 8]\n";
  auto spec = load_sweep_spec(good.string());
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  EXPECT_EQ(spec->source_path, good.string());
  EXPECT_EQ(expand_grid(*spec)->size(), 2u);
  const fs::path bad = dir / "bad.yaml";
  std::ofstream(bad) << testing::kHead << "grid:\n  lora_r: [4, -8]\n";
  auto err = load_sweep_spec(bad.string());
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().message,
            bad.string() + ":8:15: grid.lora_r[1] = -8: must be an integer >= 1");
  fs::remove_all(dir);
}

TEST(SweepSpecLoad, ShippedSweepFilesAreValid) {
  for (const char* name : {"r_alpha.yaml", "lr_batch.yaml"}) {
    auto spec = load_sweep_spec(std::string(SWEEP_SOURCE_DIR) + "/sweeps/" + name);
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.error().to_string();
    auto jobs = expand_grid(*spec);
    ASSERT_TRUE(jobs.ok()) << name;
    EXPECT_EQ(jobs->size(), 12u) << name;
  }
}

TEST(SpecToJson, KeepsGridOrderLinksAndResolvedSettings) {
  auto spec = testing::parse(
      "grid:\n  lora_r: [4]\n  lora_alpha: {times: lora_r, values: [2]}\n"
      "resources: {slots: 3}\n");
  ASSERT_TRUE(spec.ok());
  json j = spec_to_json(*spec);
  EXPECT_EQ(j["name"], "t");
  EXPECT_EQ(j["grid"][0], json::parse(R"({"key": "lora_r", "values": [4]})"));
  EXPECT_EQ(j["grid"][1],
            json::parse(R"({"key": "lora_alpha", "times": "lora_r", "values": [2]})"));
  EXPECT_EQ(j["resources"], json::parse(R"({"slots": 3, "threads_per_job": 1})"));
  EXPECT_EQ(j["objective"], json::parse(R"({"metric": "val_loss", "mode": "min"})"));
  EXPECT_EQ(j["data"]["train"], "builtin:shapes/vqa_train.json");
}

}  // namespace
}  // namespace sweep
