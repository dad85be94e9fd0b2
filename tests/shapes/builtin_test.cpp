#include "data/builtin.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace sweep::data {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int line_count(const std::string& path) {
  const std::string s = read_all(path);
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

// A `make` that counts its calls in a file shared by all processes and takes a while, so that
// concurrent callers really overlap.
void counting_make(const std::string& counter, const std::string& tmp) {
  std::ofstream(counter, std::ios::app) << getpid() << "\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::ofstream(tmp + "/payload.txt") << "made";
}

// Runs `body` in a child process; the child exits 0 when it returns true, 1 otherwise.
pid_t spawn(const std::function<bool()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    bool ok = false;
    try {
      ok = body();
    } catch (...) {
    }
    _exit(ok ? 0 : 1);
  }
  return pid;
}

// The child's exit code; -1 when it died of a signal, -2 when it hung for 60 s (then killed).
int exit_code(pid_t pid) {
  int status = 0;
  for (int i = 0; i < 6000 && waitpid(pid, &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (i == 5999) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -2;
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class BuiltinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("builtin_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(base_);
    if (const char* old = std::getenv("SWEEP_CACHE")) old_cache_ = old;
  }
  void TearDown() override {
    if (old_cache_) {
      setenv("SWEEP_CACHE", old_cache_->c_str(), 1);
    } else {
      unsetenv("SWEEP_CACHE");
    }
    fs::remove_all(base_);
  }
  std::string path(const std::string& name) const { return (base_ / name).string(); }

  fs::path base_;
  std::optional<std::string> old_cache_;
};

TEST_F(BuiltinTest, CacheDirComesFromSweepCacheAndIsCreated) {
  setenv("SWEEP_CACHE", path("cache/deep").c_str(), 1);
  EXPECT_EQ(cache_dir(), path("cache/deep"));
  EXPECT_TRUE(fs::is_directory(path("cache/deep")));
}

TEST_F(BuiltinTest, CacheDirDefaultsToHomeCache) {
  unsetenv("SWEEP_CACHE");
  const std::string home = std::getenv("HOME") ? std::getenv("HOME") : "";
  setenv("HOME", path("home").c_str(), 1);
  EXPECT_EQ(cache_dir(), path("home") + "/.cache/llava-sweep");
  setenv("HOME", home.c_str(), 1);
}

TEST_F(BuiltinTest, RecognisesBuiltinRefs) {
  EXPECT_TRUE(is_builtin("builtin:shapes/vqa_train.json"));
  EXPECT_TRUE(is_builtin(kTinyLlavaRef));
  EXPECT_FALSE(is_builtin("data/builtin:shapes"));
  EXPECT_FALSE(is_builtin("builtin"));
}

TEST_F(BuiltinTest, ModelDirIsNamedNotMade) {
  setenv("SWEEP_CACHE", path("cache").c_str(), 1);
  EXPECT_EQ(builtin_model_dir(kTinyLlavaRef), path("cache") + "/tiny-llava-v2");
  EXPECT_FALSE(fs::exists(path("cache") + "/tiny-llava-v2"));
  try {
    builtin_model_dir("builtin:huge-llava");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(),
                 "unknown built-in model 'builtin:huge-llava'; known: builtin:tiny-llava");
  }
}

TEST_F(BuiltinTest, UnknownDataRefListsTheKnownOnes) {
  setenv("SWEEP_CACHE", path("cache").c_str(), 1);
  try {
    resolve_builtin_data("builtin:shapes/test.json");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown built-in data 'builtin:shapes/test.json'"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("builtin:shapes/vqa_train.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("builtin:shapes/images"), std::string::npos) << msg;
  }
  try {
    resolve_builtin_data(kTinyLlavaRef);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is a model, not data"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path("cache") + "/shapes-v2"));  // nothing made for a bad ref
}

TEST_F(BuiltinTest, ResolvesShapesRefsIntoTheCacheMakingTheDataOnce) {
  setenv("SWEEP_CACHE", path("cache").c_str(), 1);
  const std::string root = path("cache") + "/shapes-v2";
  EXPECT_EQ(resolve_builtin_data("builtin:shapes/vqa_train.json"), root + "/vqa_train.json");
  ASSERT_TRUE(fs::exists(root + "/vqa_train.json"));
  const auto made_at = fs::last_write_time(root + "/vqa_train.json");
  EXPECT_EQ(resolve_builtin_data("builtin:shapes/images"), root + "/images");
  EXPECT_EQ(resolve_builtin_data("builtin:shapes"), root);
  EXPECT_EQ(resolve_builtin_data("builtin:shapes/corpus.txt"), root + "/corpus.txt");
  EXPECT_EQ(fs::last_write_time(root + "/vqa_train.json"), made_at);
  EXPECT_TRUE(fs::exists(root + "/images/002199.png"));
}

TEST_F(BuiltinTest, ConcurrentProcessesRunMakeExactlyOnce) {
  const std::string dir = path("made"), counter = path("calls.txt");
  int gate[2];
  ASSERT_EQ(pipe(gate), 0);
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i) {
    kids.push_back(spawn([&] {
      close(gate[1]);
      char c;
      (void)!read(gate[0], &c, 1);  // returns when the parent closes the pipe: all start together
      make_once(dir, [&](const std::string& tmp) { counting_make(counter, tmp); });
      return read_all(dir + "/payload.txt") == "made";
    }));
  }
  close(gate[0]);
  close(gate[1]);
  for (pid_t k : kids) EXPECT_EQ(exit_code(k), 0);
  EXPECT_EQ(line_count(counter), 1);
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
}

TEST_F(BuiltinTest, ConcurrentThreadsRunMakeExactlyOnce) {
  const std::string dir = path("made"), counter = path("calls.txt");
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back(
        [&] { make_once(dir, [&](const std::string& tmp) { counting_make(counter, tmp); }); });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(line_count(counter), 1);
  EXPECT_EQ(read_all(dir + "/payload.txt"), "made");
}

TEST_F(BuiltinTest, WaiterBlocksWhileAnotherHoldsTheLockAndSaysSo) {
  const std::string dir = path("made"), counter = path("calls.txt"), log = path("stderr.txt");
  const int held = open((dir + ".lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_EQ(flock(held, LOCK_EX), 0);
  const pid_t kid = spawn([&] {
    close(held);  // an inherited copy would keep the parent's lock alive
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDERR_FILENO);
    make_once(dir, [&](const std::string& tmp) { counting_make(counter, tmp); });
    return true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  int status = 0;
  EXPECT_EQ(waitpid(kid, &status, WNOHANG), 0) << "make_once returned while the lock was held";
  EXPECT_EQ(read_all(log), "waiting for another process making " + dir + "\n");
  EXPECT_FALSE(fs::exists(counter));
  close(held);  // releases the lock
  EXPECT_EQ(exit_code(kid), 0);
  EXPECT_EQ(line_count(counter), 1);
}

TEST_F(BuiltinTest, ThrowingMakeLeavesNothingAndTheNextCallSucceeds) {
  const std::string dir = path("made"), counter = path("calls.txt");
  try {
    make_once(dir, [](const std::string& tmp) {
      std::ofstream(tmp + "/half.txt") << "half";
      throw std::runtime_error("tokenizer training failed");
    });
    FAIL() << "expected the make's exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "tokenizer training failed");
  }
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  make_once(dir, [&](const std::string& tmp) { counting_make(counter, tmp); });
  EXPECT_EQ(read_all(dir + "/payload.txt"), "made");
  EXPECT_FALSE(fs::exists(dir + "/half.txt"));
  EXPECT_EQ(line_count(counter), 1);
}

TEST_F(BuiltinTest, ProcessKilledMidMakeLeavesNoDirAndTheNextCallRemakes) {
  const std::string dir = path("made"), counter = path("calls.txt");
  const pid_t kid = fork();
  if (kid == 0) {
    make_once(dir, [](const std::string& tmp) {
      std::ofstream(tmp + "/half.txt") << "half";
      _exit(3);  // dies without unwinding, like a kill
    });
    _exit(0);
  }
  EXPECT_EQ(exit_code(kid), 3);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(dir + ".tmp/half.txt"));
  make_once(dir, [&](const std::string& tmp) { counting_make(counter, tmp); });
  EXPECT_EQ(read_all(dir + "/payload.txt"), "made");
  EXPECT_FALSE(fs::exists(dir + "/half.txt"));
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
}

TEST_F(BuiltinTest, TrailingSlashNamesTheSameResource) {
  const std::string dir = path("made"), counter = path("calls.txt");
  make_once(dir + "/", [&](const std::string& tmp) { counting_make(counter, tmp); });
  make_once(dir, [&](const std::string& tmp) { counting_make(counter, tmp); });
  EXPECT_EQ(line_count(counter), 1);
  EXPECT_TRUE(fs::exists(dir + ".lock"));
  EXPECT_FALSE(fs::exists(dir + "/.lock"));
}

TEST_F(BuiltinTest, ADirWithoutTheCompleteMarkerIsRemade) {
  const std::string dir = path("made"), counter = path("calls.txt");
  fs::create_directories(dir);
  std::ofstream(dir + "/stale.txt") << "stale";
  make_once(dir, [&](const std::string& tmp) { counting_make(counter, tmp); });
  EXPECT_FALSE(fs::exists(dir + "/stale.txt"));
  make_once(dir, [&](const std::string& tmp) { counting_make(counter, tmp); });
  EXPECT_EQ(line_count(counter), 1);
}

}  // namespace
}  // namespace sweep::data
