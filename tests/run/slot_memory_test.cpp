// What `sweep plan` compares each job's memory estimate with: nvidia-smi's figure for a GPU slot,
// resources.memory_gb or this machine's share for a CPU slot; and the key's validation.
#include "orchestrator/run/slot_memory.h"

#include <gtest/gtest.h>

#include "tests/spec/spec_test_util.h"

namespace sweep {
namespace {

TEST(SlotMemory, ReadsNvidiaSmiMebibytes) {
  EXPECT_EQ(parse_nvidia_smi_mib("143771\n"), int64_t{143771} << 20);  // an H200
  EXPECT_EQ(parse_nvidia_smi_mib("  81920 "), int64_t{81920} << 20);
  EXPECT_EQ(parse_nvidia_smi_mib("[N/A]"), std::nullopt);
  EXPECT_EQ(parse_nvidia_smi_mib(""), std::nullopt);
  EXPECT_EQ(parse_nvidia_smi_mib("12 MiB"), std::nullopt);
}

TEST(SlotMemory, CpuSlotsUseMemoryGbElseShareTheMachine) {
  ResourceSpec r;
  r.slots = 2;
  r.memory_gb = 1.5;
  SlotMemory given = slot_memory(r);
  EXPECT_EQ(given.bytes, int64_t{3} << 29);
  EXPECT_EQ(given.source, "resources.memory_gb");

  r.memory_gb = 0;
  SlotMemory shared = slot_memory(r);
  ASSERT_GT(machine_memory(), 0);
  EXPECT_EQ(shared.bytes, machine_memory() / 2);
  EXPECT_EQ(shared.source, "this machine's memory / 2 slot(s)");
}

TEST(SlotMemory, MemoryGbIsAPositiveNumberOfGib) {
  auto spec = testing::parse("resources: {slots: 2, memory_gb: 12.5}\n");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  EXPECT_DOUBLE_EQ(spec->resources.memory_gb, 12.5);
  Error e = testing::parse_error("resources: {memory_gb: 0}\n");
  EXPECT_EQ(e.message, "t.yaml:7:24: resources.memory_gb = 0: must be a number > 0");
  EXPECT_NE(e.hint.find("GiB"), std::string::npos);
}

}  // namespace
}  // namespace sweep
