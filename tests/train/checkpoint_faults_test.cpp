// A checkpoint save under injected file-system faults (common/file_system.h): every call of the
// save fails once in turn (ENOSPC, then a short write); each time the save reports the path and
// the cause, the previous checkpoint stays whole and loadable, and nothing half-written is left
// under a step- name or as a temp directory.
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/file_system.h"
#include "worker/train/checkpoint_manager.h"

namespace sweep::train {
namespace {
namespace fs = std::filesystem;

class Injected {
 public:
  explicit Injected(FaultRule rule) : faulty_(posix_, std::move(rule)) {
    set_file_system(&faulty_);
  }
  ~Injected() { set_file_system(nullptr); }
  FaultyFileSystem& fs() { return faulty_; }

 private:
  PosixFileSystem posix_;
  FaultyFileSystem faulty_;
};

// The checkpoint's files go through the file-system door as the real writers do.
CheckpointInfo save(CheckpointManager& m, int step) {
  return m.save(step, {{"val_loss", 1.0 / step}}, {{"extra", step}}, [&](const std::string& d) {
    write_file_atomic(d + "/adapter_model.safetensors", std::string(4096, char('a' + step)));
    write_file_atomic(d + "/optimizer.safetensors", std::string(8192, 'o'));
  });
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class CheckpointFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ckpt_faults_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override {
    set_file_system(nullptr);
    fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(CheckpointFaults, EveryCallOfASaveFailingOnceKeepsThePreviousCheckpoint) {
  int calls = 0;
  {
    CheckpointManager m(dir_.string(), "val_loss", true, 2);
    save(m, 1);
    FaultRule counting;
    counting.nth = INT_MAX;
    Injected injected(counting);
    save(m, 2);
    calls = injected.fs().matching_calls();
  }
  ASSERT_GE(calls, 10);
  for (bool short_write : {false, true}) {
    for (int n = 1; n <= calls; ++n) {
      SCOPED_TRACE("call " + std::to_string(n) + (short_write ? " (short write)" : ""));
      fs::remove_all(dir_);
      CheckpointManager m(dir_.string(), "val_loss", true, 2);
      save(m, 1);
      FaultRule rule;
      rule.nth = n;
      if (short_write) rule.op = FaultRule::Op::kWrite, rule.short_write = true;
      bool failed = false;
      {
        Injected injected(rule);
        try {
          save(m, 2);
        } catch (const FileError& e) {
          failed = true;
          EXPECT_TRUE(e.disk_full()) << e.what();
          EXPECT_NE(std::string(e.what()).find(dir_.string()), std::string::npos) << e.what();
        }
        if (!failed && injected.fs().faults() == 0) break;  // fewer writes than calls
      }
      EXPECT_TRUE(failed);

      // What a resumed worker sees: the previous checkpoint whole, the new one whole or absent.
      CheckpointManager reader(dir_.string(), "val_loss", true, 2);
      reader.scan();
      ASSERT_FALSE(reader.checkpoints().empty());
      EXPECT_EQ(reader.checkpoints().front().step, 1);
      EXPECT_EQ(read_all(dir_ / "step-000001" / "adapter_model.safetensors"),
                std::string(4096, 'b'));
      for (const CheckpointInfo& c : reader.checkpoints()) {
        EXPECT_EQ(read_all(fs::path(c.path) / "optimizer.safetensors"), std::string(8192, 'o'));
        EXPECT_EQ(read_all(fs::path(c.path) / "adapter_model.safetensors"),
                  std::string(4096, char('a' + c.step)));
      }
      for (const auto& e : fs::directory_iterator(dir_)) {
        const std::string name = e.path().filename();
        EXPECT_TRUE(name == "step-000001" || name == "step-000002" || name == "latest") << name;
      }
      const std::string latest = read_all(dir_ / "latest");
      EXPECT_TRUE(latest == "step-000001\n" || latest == "step-000002\n") << latest;
    }
  }
}

}  // namespace
}  // namespace sweep::train
