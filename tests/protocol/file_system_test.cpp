// The file-system door (common/file_system.h) under injected faults: every call of an atomic
// write and of an events append fails once in turn, and the file on disk is always either the
// old one or the new one, never a mixture; no partial events line is ever read back.
#include "common/file_system.h"

#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "protocol/events.h"

namespace sweep {
namespace {

namespace stdfs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Installs a FaultyFileSystem for the scope of one test step.
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

// Counts the primitive calls `f` makes (on paths containing `part`).
template <typename F>
int count_calls(const std::string& part, F f) {
  FaultRule counting;
  counting.path_part = part;
  counting.nth = INT_MAX;  // never reached: counts only
  Injected injected(counting);
  f();
  return injected.fs().matching_calls();
}

class FileSystemFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (stdfs::path(::testing::TempDir()) /
            ("fs-faults-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_);
  }
  void TearDown() override {
    set_file_system(nullptr);
    stdfs::remove_all(dir_);
  }
  // Names in dir_ (temp files included).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : stdfs::directory_iterator(dir_)) out.push_back(e.path().filename());
    return out;
  }
  std::string dir_;
};

TEST_F(FileSystemFaults, EveryCallOfAnAtomicWriteFailingLeavesTheOldFileWhole) {
  const std::string path = dir_ + "/state.json";
  write_file_atomic(path, "old\n");
  const std::string fresh(10000, 'n');
  const int calls = count_calls("", [&] { write_file_atomic(path, fresh); });
  ASSERT_GE(calls, 4);  // open, write, sync, rename, directory sync
  for (int kind = 0; kind < 2; ++kind) {
    for (int n = 1; n <= calls; ++n) {
      write_file_atomic(path, "old\n");
      FaultRule rule;
      rule.nth = n;
      rule.short_write = kind == 1;
      if (rule.short_write) rule.op = FaultRule::Op::kWrite;
      bool threw = false;
      {
        Injected injected(rule);
        try {
          write_file_atomic(path, fresh);
        } catch (const FileError& e) {
          threw = true;
          EXPECT_TRUE(e.disk_full()) << e.what();
          EXPECT_NE(std::string(e.what()).find(dir_), std::string::npos) << e.what();
          EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos);
        }
        if (rule.short_write && n > 1) break;  // only one write call to cut short
      }
      EXPECT_TRUE(threw) << "call " << n;
      const std::string now = read_all(path);
      EXPECT_TRUE(now == "old\n" || now == fresh) << "call " << n << ": " << now.size() << " bytes";
      EXPECT_EQ(names(), std::vector<std::string>{"state.json"})
          << "a temp file is left, call " << n;
    }
  }
}

TEST_F(FileSystemFaults, AFailedAppendIsCutBackSoNoPartialLineStays) {
  const std::string path = dir_ + "/events.jsonl";
  append_to_file(path, "{\"a\":1}\n");
  for (FaultRule::Op op : {FaultRule::Op::kOpen, FaultRule::Op::kWrite}) {
    for (bool short_write : {false, true}) {
      if (short_write && op != FaultRule::Op::kWrite) continue;
      FaultRule rule;
      rule.op = op;
      rule.short_write = short_write;
      rule.error = EIO;
      Injected injected(rule);
      EXPECT_THROW(append_to_file(path, "{\"b\":2222222222222222}\n"), FileError);
    }
  }
  EXPECT_EQ(read_all(path), "{\"a\":1}\n");
  append_to_file(path, "{\"c\":3}\n");
  EXPECT_EQ(read_all(path), "{\"a\":1}\n{\"c\":3}\n");
}

TEST_F(FileSystemFaults, EveryCallOfAnEventAppendFailingOnceLosesOnlyThatEvent) {
  const std::string path = dir_ + "/events.jsonl";
  int calls = 0;
  {
    EventWriter probe(dir_ + "/probe.jsonl", 1);
    calls = count_calls("probe", [&] { probe.emit(HeartbeatEvent{1}); });
  }
  ASSERT_GE(calls, 2);
  EventWriter events(path, 1);
  events.emit(HeartbeatEvent{0});
  int64_t written = 1;
  for (bool short_write : {false, true}) {
    for (int n = 1; n <= calls; ++n) {
      FaultRule rule;
      rule.nth = n;
      rule.path_part = "events.jsonl";
      rule.short_write = short_write;
      if (short_write) rule.op = FaultRule::Op::kWrite;
      {
        Injected injected(rule);
        ProgressEvent progress;
        progress.step = n;
        progress.metrics["train_loss"] = 0.5;
        try {
          events.emit(progress);
          ++written;
        } catch (const FileError& e) {
          EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        }
        if (short_write && n > 1) continue;
      }
      events.emit(HeartbeatEvent{n});  // the next event after the fault is written whole
      ++written;
    }
  }
  // Every line is a whole event; seq has no gap (a failed event used none).
  std::vector<Error> errors;
  EventTail tail(path);
  std::vector<Event> read = tail.poll(&errors);
  EXPECT_TRUE(errors.empty()) << errors.front().message;
  ASSERT_EQ(static_cast<int64_t>(read.size()), written);
  for (size_t i = 0; i < read.size(); ++i) EXPECT_EQ(read[i].seq, static_cast<int64_t>(i) + 1);
  EXPECT_EQ(read_all(path).back(), '\n');
  EXPECT_EQ(events.last_seq(), written);
}

TEST_F(FileSystemFaults, DirectoriesRenamesAndRemovalsReportThePathAndTheCause) {
  FaultRule rule;
  rule.op = FaultRule::Op::kMakeDir;
  rule.error = EIO;
  {
    Injected injected(rule);
    try {
      create_directories(dir_ + "/a/b");
      ADD_FAILURE() << "no error";
    } catch (const FileError& e) {
      EXPECT_FALSE(e.disk_full());
      EXPECT_EQ(e.path(), dir_ + "/a");
      EXPECT_EQ(std::string(e.what()), dir_ + "/a: cannot create directory: Input/output error");
    }
  }
  create_directories(dir_ + "/a/b");
  write_file_atomic(dir_ + "/a/b/f", "x");
  rule.op = FaultRule::Op::kRename;
  {
    Injected injected(rule);
    EXPECT_THROW(rename_path(dir_ + "/a", dir_ + "/c"), FileError);
  }
  EXPECT_TRUE(stdfs::exists(dir_ + "/a/b/f"));
  rename_path(dir_ + "/a", dir_ + "/c");
  remove_all(dir_ + "/c");
  remove_all(dir_ + "/missing");  // not an error
  EXPECT_TRUE(names().empty());
}

TEST(FaultRule, ParsesTheTestingHookAndRefusesNonsense) {
  FaultRule r = parse_fault_rule("enospc:checkpoints:2");
  EXPECT_EQ(r.error, ENOSPC);
  EXPECT_EQ(r.path_part, "checkpoints");
  EXPECT_EQ(r.nth, 2);
  EXPECT_EQ(r.op, FaultRule::Op::kAny);
  EXPECT_EQ(parse_fault_rule("fsync::0").op, FaultRule::Op::kSync);
  EXPECT_EQ(parse_fault_rule("rename:step-:1").op, FaultRule::Op::kRename);
  EXPECT_TRUE(parse_fault_rule("short:events:1").short_write);
  EXPECT_EQ(parse_fault_rule("eio:x:1").error, EIO);
  for (const char* bad : {"", "enospc", "enospc:x", "full:x:1", "eio:x:-1", "eio:x:1a"})
    EXPECT_THROW(parse_fault_rule(bad), Failure) << bad;
}

TEST(DiskFull, IsToldApartFromOtherErrors) {
  EXPECT_TRUE(is_disk_full(FileError("write", "/x", ENOSPC)));
  EXPECT_TRUE(is_disk_full(FileError("write", "/x", EDQUOT)));
  EXPECT_FALSE(is_disk_full(FileError("write", "/x", EIO)));
  EXPECT_TRUE(is_disk_full(std::filesystem::filesystem_error(
      "create_directories", std::make_error_code(std::errc::no_space_on_device))));
  EXPECT_FALSE(is_disk_full(std::runtime_error("cannot parse")));
}

}  // namespace
}  // namespace sweep
