#include "worker/train/checkpoint_manager.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace sweep::train {
namespace {
namespace fs = std::filesystem;

class CheckpointManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ckpt_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CheckpointInfo save(CheckpointManager& m, int step, double val_loss,
                      std::vector<std::string>* deleted = nullptr) {
    return m.save(
        step, {{"val_loss", val_loss}}, {{"extra", 1}},
        [](const std::string& d) { std::ofstream(d + "/weights.bin") << "w"; }, deleted);
  }
  std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::string s;
    std::getline(in, s);
    return s;
  }

  fs::path dir_;
};

TEST_F(CheckpointManagerTest, SaveWritesStateAndFilesAndLatestPointer) {
  CheckpointManager m(dir_.string(), "val_loss", true, 1);
  CheckpointInfo info = save(m, 40, 1.5);
  EXPECT_EQ(info.path, (dir_ / "step-000040").string());
  EXPECT_TRUE(fs::exists(dir_ / "step-000040" / "weights.bin"));
  std::ifstream in(dir_ / "step-000040" / "trainer_state.json");
  auto state = nlohmann::json::parse(in);
  EXPECT_EQ(state["step"], 40);
  EXPECT_EQ(state["extra"], 1);
  EXPECT_DOUBLE_EQ(state["metrics"]["val_loss"].get<double>(), 1.5);
  EXPECT_EQ(read(dir_ / "latest"), "step-000040");
  EXPECT_FALSE(fs::exists(dir_ / ".tmp-step-000040"));
}

TEST_F(CheckpointManagerTest, KeepsTheBestKPlusTheLatest) {
  CheckpointManager m(dir_.string(), "val_loss", true, 1);
  std::vector<std::string> deleted;
  save(m, 10, 2.0, &deleted);
  save(m, 20, 1.0, &deleted);  // best
  save(m, 30, 3.0, &deleted);  // latest
  EXPECT_EQ(deleted, std::vector<std::string>{(dir_ / "step-000010").string()});
  save(m, 40, 1.5, &deleted);
  ASSERT_EQ(m.checkpoints().size(), 2u);
  EXPECT_EQ(m.checkpoints()[0].step, 20);
  EXPECT_EQ(m.checkpoints()[1].step, 40);
  EXPECT_FALSE(fs::exists(dir_ / "step-000030"));
  EXPECT_EQ(m.best()->step, 20);
  EXPECT_EQ(m.latest()->step, 40);
}

TEST_F(CheckpointManagerTest, MaxModePrefersLargerValues) {
  CheckpointManager m(dir_.string(), "val_loss", false, 1);
  save(m, 10, 2.0);
  save(m, 20, 1.0);
  save(m, 30, 0.5);
  EXPECT_EQ(m.best()->step, 10);
  EXPECT_EQ(m.checkpoints().size(), 2u);
}

TEST_F(CheckpointManagerTest, CheckpointWithoutMetricsIsKeptOnlyWhileLatest) {
  CheckpointManager m(dir_.string(), "val_loss", true, 1);
  save(m, 10, 2.0);
  m.save(15, nlohmann::json::object(), {}, [](const std::string&) {});
  EXPECT_EQ(m.latest()->step, 15);
  save(m, 20, 3.0);
  ASSERT_EQ(m.checkpoints().size(), 2u);
  EXPECT_EQ(m.checkpoints()[0].step, 10);
  EXPECT_EQ(m.checkpoints()[1].step, 20);
}

TEST_F(CheckpointManagerTest, ScanRereadsCheckpointsAndRemovesInterruptedSaves) {
  {
    CheckpointManager m(dir_.string(), "val_loss", true, 2);
    save(m, 10, 2.0);
    save(m, 20, 1.0);
  }
  fs::create_directories(dir_ / ".tmp-step-000030");
  CheckpointManager again(dir_.string(), "val_loss", true, 2);
  again.scan();
  ASSERT_EQ(again.checkpoints().size(), 2u);
  EXPECT_EQ(again.latest()->step, 20);
  EXPECT_DOUBLE_EQ(again.best()->metrics["val_loss"].get<double>(), 1.0);
  EXPECT_FALSE(fs::exists(dir_ / ".tmp-step-000030"));
}

TEST_F(CheckpointManagerTest, FailedWriteLeavesNoCheckpoint) {
  CheckpointManager m(dir_.string(), "val_loss", true, 1);
  EXPECT_THROW(
      m.save(10, {}, {}, [](const std::string&) { throw std::runtime_error("disk full"); }),
      std::runtime_error);
  EXPECT_FALSE(fs::exists(dir_ / "step-000010"));
  EXPECT_FALSE(m.latest().has_value());
  m.scan();
  EXPECT_FALSE(fs::exists(dir_ / ".tmp-step-000010"));
}

TEST_F(CheckpointManagerTest, StepDirNamesArePaddedToSixDigits) {
  EXPECT_EQ(CheckpointManager::step_dir_name(40), "step-000040");
  EXPECT_EQ(CheckpointManager::step_dir_name(1234567), "step-1234567");
}

}  // namespace
}  // namespace sweep::train
