// The real sweep-worker binary: SIGTERM during a job, and score / merge / predict on a trained
// adapter.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "protocol/exit_codes.h"
#include "tests/train/train_world.h"
#include "worker/train/model_setup.h"

#ifndef SWEEP_WORKER_BIN
#error "SWEEP_WORKER_BIN must name the sweep-worker binary"
#endif

namespace sweep::train {
namespace {
namespace fs = std::filesystem;
using testing::make_job;
using testing::read_events;
using testing::world;

struct Output {
  int code = -1;
  std::string out;
};

Output run_worker(const std::string& args) {
  Output o;
  const std::string cmd = std::string(SWEEP_WORKER_BIN) + " " + args + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) o.out.append(buf.data(), n);
  int status = pclose(pipe);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

nlohmann::json params(int max_steps) {
  return {{"batch_size", 4},       {"max_steps", max_steps}, {"eval_every", 0},
          {"eval_samples", 2},     {"max_new_tokens", 3},    {"model_max_length", 256},
          {"learning_rate", 1e-2}, {"warmup_steps", 0},      {"seed", 5}};
}

pid_t spawn_worker(const std::string& job_path) {
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    execl(SWEEP_WORKER_BIN, SWEEP_WORKER_BIN, job_path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

TEST(SweepWorker, SigtermCheckpointsEmitsStoppedAndExitsZero) {
  JobFile job = make_job("sigterm", params(100000));
  fs::remove_all(job.run_dir);
  fs::create_directories(job.run_dir);
  job.write(job.run_dir + "/job.json");
  pid_t pid = spawn_worker(job.run_dir + "/job.json");
  ASSERT_GT(pid, 0);

  // Wait for the first progress event, then ask it to stop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool training = false;
  while (!training && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto& e : read_events(job.run_dir)) training |= e.as<ProgressEvent>() != nullptr;
  }
  ASSERT_TRUE(training) << "no progress event within 60 s";
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kExitOk);

  auto events = read_events(job.run_dir);
  ASSERT_FALSE(events.empty());
  const auto* stopped = events.back().as<StoppedEvent>();
  ASSERT_NE(stopped, nullptr) << events.back().type();
  ASSERT_TRUE(stopped->checkpoint.has_value());
  const std::string ckpt = *stopped->checkpoint;
  const int step = static_cast<int>(stopped->step);
  EXPECT_GT(step, 0);
  EXPECT_EQ(ckpt, job.checkpoints_dir() + "/step-" +
                      std::string(6 - std::to_string(step).size(), '0') + std::to_string(step));
  auto m = load_model_with_checkpoint(job.base_model, ckpt, torch::kFloat32, torch::kCPU);
  EXPECT_TRUE(m->language_model->model->layers->size() > 0);
}

TEST(SweepWorker, ScoreWithAdapterEqualsScoreOfTheMergedModel) {
  JobFile job = make_job("tools", params(6));
  fs::remove_all(job.run_dir);
  fs::create_directories(job.run_dir);
  job.write(job.run_dir + "/job.json");
  ASSERT_EQ(run_worker(job.run_dir + "/job.json").code, 0);
  const std::string ckpt = job.checkpoints_dir() + "/step-000006";
  const std::string merged = job.run_dir + "/merged";

  Output merge = run_worker("merge " + ckpt + " --base " + job.base_model + " --out " + merged);
  ASSERT_EQ(merge.code, 0) << merge.out;
  EXPECT_TRUE(fs::exists(merged + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(merged + "/tokenizer.model"));

  // fp32 on both sides: precision auto may be bf16 on this CPU, and a merged bf16 weight is not
  // the bf16 base plus the fp32 adapter.
  const std::string data = " --data " + world().vqa_val + " --image-folder " + world().images +
                           " --max-new-tokens 3 --precision fp32";
  Output with_adapter = run_worker("score --model " + job.base_model + " --adapter " + ckpt + data);
  Output with_merged = run_worker("score --model " + merged + data);
  Output base = run_worker("score --model " + job.base_model + data);
  ASSERT_EQ(with_adapter.code, 0);
  ASSERT_EQ(with_merged.code, 0);
  auto a = json_lines(with_adapter.out), b = json_lines(with_merged.out), c = json_lines(base.out);
  ASSERT_EQ(a.size(), 7u);  // 6 val samples + summary
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    EXPECT_EQ(a[i]["id"], b[i]["id"]);
    EXPECT_NEAR(a[i]["loss"].get<double>(), b[i]["loss"].get<double>(), 1e-5) << a[i]["id"];
    EXPECT_EQ(a[i]["prediction"], b[i]["prediction"]);
  }
  EXPECT_EQ(a.back()["summary"], true);
  EXPECT_NEAR(a.back()["val_loss"].get<double>(), b.back()["val_loss"].get<double>(), 1e-5);
  // The adapter changed the model: the base scores differently.
  EXPECT_GT(std::abs(a.back()["val_loss"].get<double>() - c.back()["val_loss"].get<double>()),
            1e-3);

  Output predict =
      run_worker("predict --model " + merged + " --image " + world().images +
                 "/000000.png --prompt 'What colour is the shape?' --max-new-tokens 3");
  EXPECT_EQ(predict.code, 0);
  EXPECT_FALSE(predict.out.empty());
}

TEST(SweepWorker, UnknownToolOptionIsABadInput) {
  Output o = run_worker("score --model x --colour red");
  EXPECT_EQ(o.code, kExitBadInput);
}

}  // namespace
}  // namespace sweep::train
