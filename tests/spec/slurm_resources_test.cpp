// `resources.executor: slurm` and its keys (orchestrator/spec/slurm_resources.h).
#include <gtest/gtest.h>

#include "orchestrator/spec/slurm_resources.h"
#include "tests/spec/spec_test_util.h"

namespace sweep {
namespace {

using testing::parse;
using testing::parse_error;

TEST(SlurmResources, ReadsEveryKey) {
  auto spec = parse(
      "grid:\n  lora_r: [4]\n"
      "resources:\n  executor: slurm\n  partition: gpu\n  gpus_per_job: 1\n  cpus_per_job: 8\n"
      "  mem: 64G\n  time_limit: \"04:00:00\"\n  account: vision\n  qos: normal\n"
      "  sbatch_args: [\"--constraint=a100\", \"--exclusive\"]\n  max_submitted: 16\n");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  const ResourceSpec& r = spec->resources;
  EXPECT_EQ(r.executor, ExecutorKind::kSlurm);
  EXPECT_EQ(r.slurm.partition, "gpu");
  EXPECT_EQ(r.slurm.gpus_per_job, 1);
  EXPECT_EQ(r.slurm.cpus_per_job, 8);
  EXPECT_EQ(r.slurm.mem, "64G");
  EXPECT_EQ(r.slurm.time_limit, "04:00:00");
  EXPECT_EQ(r.slurm.account, "vision");
  EXPECT_EQ(r.slurm.qos, "normal");
  EXPECT_EQ(r.slurm.sbatch_args, (std::vector<std::string>{"--constraint=a100", "--exclusive"}));
  EXPECT_EQ(r.total_slots(), 16);
}

TEST(SlurmResources, DefaultsToTheLocalExecutor) {
  auto spec = parse("grid:\n  lora_r: [4]\nresources: {slots: 3}\n");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  EXPECT_EQ(spec->resources.executor, ExecutorKind::kLocal);
  EXPECT_EQ(spec->resources.total_slots(), 3);
}

TEST(SlurmResources, ErrorsNameTheKey) {
  EXPECT_EQ(parse_error("resources: {executor: pbs}\n").message,
            "t.yaml:7:23: resources.executor = pbs: must be one of local, slurm");
  EXPECT_EQ(parse_error("resources: {executor: slurm, time_limit: 4h}\n").message,
            "t.yaml:7:42: resources.time_limit = 4h: not a Slurm time");
  EXPECT_EQ(parse_error("resources: {executor: slurm, mem: lots}\n").message,
            "t.yaml:7:35: resources.mem = lots: not a Slurm memory size");
  EXPECT_EQ(parse_error("resources: {executor: slurm, max_submitted: 0}\n").message,
            "t.yaml:7:45: resources.max_submitted = 0: must be an integer >= 1");
  EXPECT_EQ(parse_error("resources: {executor: slurm, partition: \"a b\"}\n").message,
            "t.yaml:7:41: resources.partition = a b: must be a name of letters, digits, _ . , : -");
}

TEST(SlurmResources, SlurmKeysNeedTheSlurmExecutor) {
  Error e = parse_error("resources: {partition: gpu}\n");
  EXPECT_EQ(e.message, "t.yaml:7:24: resources.partition is for executor: slurm");
  EXPECT_NE(e.hint.find("executor: slurm"), std::string::npos);
}

TEST(SlurmResources, LocalKeysAreRefusedUnderSlurm) {
  Error e = parse_error("resources: {executor: slurm, gpus: [0]}\n");
  EXPECT_EQ(e.message, "t.yaml:7:36: resources.gpus is for executor: local");
  EXPECT_NE(e.hint.find("gpus_per_job"), std::string::npos);
}

TEST(SlurmResources, SbatchArgsSweepSetsItselfAreRefused) {
  Error e = parse_error("resources: {executor: slurm, sbatch_args: [\"--output=x.log\"]}\n");
  EXPECT_EQ(e.message, "t.yaml:7:44: resources.sbatch_args: --output is set by sweep itself");
  EXPECT_EQ(parse_error("resources: {executor: slurm, sbatch_args: \"--exclusive\"}\n").message,
            "t.yaml:7:43: resources.sbatch_args = --exclusive: must be a list of strings");
}

TEST(SlurmResources, SlurmTimesAndMemory) {
  for (const char* t : {"90", "30:00", "04:00:00", "1-00", "1-12:00", "2-00:00:00"})
    EXPECT_TRUE(is_slurm_time(t)) << t;
  for (const char* t : {"0", "4h", "", "1:2:3:4", "-1"}) EXPECT_FALSE(is_slurm_time(t)) << t;
  for (const char* m : {"4096", "32G", "512M", "1T"}) EXPECT_TRUE(is_slurm_memory(m)) << m;
  for (const char* m : {"0", "32GB", "G", "1.5G"}) EXPECT_FALSE(is_slurm_memory(m)) << m;
}

TEST(SlurmResources, ShippedSlurmExampleIsValid) {
  auto spec = load_sweep_spec(std::string(SWEEP_SOURCE_DIR) + "/sweeps/slurm_example.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  EXPECT_EQ(spec->resources.executor, ExecutorKind::kSlurm);
  EXPECT_GT(spec->resources.slurm.gpus_per_job, 0);
  auto jobs = expand_grid(*spec);
  ASSERT_TRUE(jobs.ok()) << jobs.error().to_string();
  EXPECT_GT(jobs->size(), 1u);
}

}  // namespace
}  // namespace sweep
