// Failures that a retry cannot fix, through the real programs on a tiny model: a full disk
// (injected into sweep-worker with the SWEEP_FAULT_INJECT testing hook) ends the job with a
// `failed` event marked disk_full that names the path and the cause, exit code 5, nothing
// half-written left, and no blind retry; a truncated model file and truncated images end with
// the bad-input exit code and are not retried either.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/common/cli_run.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using sweep::testing::RunResult;
using sweep::testing::shell_quote;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<json> read_events(const fs::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));  // all whole
  return out;
}

class Faults : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::path(::testing::TempDir()) / ("fault-e2e-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "scratch");
    env_ = "cd " + shell_quote(root_.string()) +
           " && SWEEP_CACHE=" + shell_quote((root_ / "cache").string()) + " ";
    std::ofstream(root_ / "corpus.txt")
        << "A chat between a curious user and an artificial intelligence assistant.\n"
           "USER: ASSISTANT: What colour is the circle? red green blue yellow\n"
           "What shape is the red object? circle square triangle. How many? one two three\n";
    const std::string model = (root_ / "model").string();
    setup_ok_ = run(SWEEP_WORKER_BIN, "init-model --preset tiny --vocab-size 300 --out " + model)
                        .exit_code == 0 &&
                run(SWEEP_TOKENIZER_BIN,
                    (root_ / "corpus.txt").string() + " " + model + "/tokenizer.model 300")
                        .exit_code == 0;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  void SetUp() override { ASSERT_TRUE(setup_ok_) << "the tiny model could not be made"; }

  static RunResult run(const std::string& program, const std::string& args,
                       const std::string& env = "") {
    return sweep::testing::run_program(program, args, (root_ / "scratch").string(), env_ + env);
  }
  // A one-job sweep `name` over `model` with 2 retries; runs it and returns the result.
  static RunResult run_sweep(const std::string& name, const std::string& model,
                             const std::string& images, const std::string& env) {
    std::ofstream(root_ / (name + ".yaml"))
        << "name: " << name << "\n"
        << "base_model: " << model << "\n"
        << "data:\n"
           "  train: builtin:shapes/vqa_train.json\n"
           "  val: builtin:shapes/vqa_val.json\n"
           "  image_folder: "
        << images
        << "\n"
           "train: {max_steps: 2, eval_every: 2, eval_samples: 4, batch_size: 2, "
           "max_new_tokens: 2, lora_r: 4, lora_alpha: 8}\n"
           "objective: {metric: val_loss, mode: min}\n"
           "resources: {slots: 1, threads_per_job: 1}\n"
           "retries: 2\n";
    return run(SWEEP_BIN, "run " + name + ".yaml", env);
  }
  // "state attempt exit_code" of the sweep's only job, and of its attempts.
  static std::string job_row(const std::string& sweep) {
    RunResult r = run(SWEEP_BIN,
                      "query --format csv \"SELECT j.state, j.attempt, a.exit_code "
                      "FROM jobs j JOIN attempts a ON a.job_id = j.id JOIN sweeps s ON "
                      "s.id = j.sweep_id WHERE s.name = '" +
                          sweep + "'\"");
    return r.out;
  }
  static fs::path job_dir(const std::string& sweep) {
    for (const auto& e : fs::directory_iterator(root_ / "runs" / sweep))
      if (fs::exists(e.path() / "job.json")) return e.path();
    return {};
  }

  static inline fs::path root_;
  static inline std::string env_;
  static inline bool setup_ok_ = false;
};

TEST_F(Faults, AFullDiskAtTheFirstCheckpointEndsTheJobCleanlyAndIsNotRetriedBlindly) {
  // The checkpoint directory cannot be made; the optimizer state (LibTorch's own serializer,
  // which used to abort the process on a full disk) is cut short.
  for (const auto& [sweep, fault] : std::vector<std::pair<std::string, std::string>>{
           {"full", "enospc:checkpoints:1"}, {"short", "short:optimizer.pt:1"}}) {
    SCOPED_TRACE(fault);
    RunResult r =
        run_sweep(sweep, "model", "builtin:shapes/images", "SWEEP_FAULT_INJECT=" + fault + " ");
    const std::string row = job_row(sweep);
    EXPECT_TRUE(contains(row, "failed,1,5")) << row << r.out << r.err;  // one attempt, exit 5
    EXPECT_FALSE(contains(row, ",2,")) << row;

    const fs::path dir = job_dir(sweep);
    ASSERT_FALSE(dir.empty());
    std::vector<json> events = read_events(dir / "events.jsonl");
    ASSERT_FALSE(events.empty());
    const json& last = events.back();
    EXPECT_EQ(last["type"], "failed") << last;
    EXPECT_EQ(last["disk_full"], true) << last;
    EXPECT_EQ(last["stage"], "checkpoint") << last;
    EXPECT_TRUE(contains(last["message"], (dir / "checkpoints").string())) << last;
    EXPECT_TRUE(contains(last["message"], "No space left on device")) << last;
    // Nothing half-written: no temp directory or file anywhere in the run directory.
    for (const auto& e : fs::recursive_directory_iterator(dir))
      EXPECT_FALSE(contains(e.path().filename().string(), ".tmp")) << e.path();
  }
}

TEST_F(Faults, ATruncatedModelFileIsBadInputAndIsNotRetried) {
  const fs::path broken = root_ / "broken";
  fs::remove_all(broken);
  fs::copy(root_ / "model", broken);
  const fs::path weights = broken / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) / 2);
  RunResult r = run_sweep("truncated", "broken", "builtin:shapes/images", "");
  const std::string row = job_row("truncated");
  if (row.find("failed") == std::string::npos) {
    // Refused before any worker started (sweep run checks the model): not retried either.
    EXPECT_NE(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "model.safetensors")) << r.err;
    return;
  }
  EXPECT_TRUE(contains(row, "failed,1,1")) << row << r.out << r.err;
  EXPECT_FALSE(contains(row, ",2,")) << row;
  std::vector<json> events = read_events(job_dir("truncated") / "events.jsonl");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["type"], "failed");
  EXPECT_EQ(events.back()["bad_input"], true) << events.back();
  EXPECT_TRUE(contains(events.back()["message"], "model.safetensors")) << events.back();
}

TEST_F(Faults, TruncatedImagesFoundByTheWorkerAreBadInputNotAnInternalError) {
  // The job file of a finished run, pointed at images cut to their first 200 bytes and at a
  // fresh run directory (no feature cache: the images must be decoded).
  RunResult first = run_sweep("whole", "model", "builtin:shapes/images", "");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  json job = json::parse(std::ifstream(job_dir("whole") / "job.json"));
  const fs::path images = root_ / "cut-images";
  fs::remove_all(images);
  // job.json's image folder: `data.image_folder`, or `image_folder` in the older layout.
  json& folder = job.contains("data") && job["data"].is_object() ? job["data"]["image_folder"]
                                                                 : job["image_folder"];
  fs::copy(folder.get<std::string>(), images, fs::copy_options::recursive);
  for (const auto& e : fs::recursive_directory_iterator(images))
    if (e.is_regular_file()) fs::resize_file(e.path(), 200);
  const fs::path run_dir = root_ / "cut-run";
  fs::remove_all(run_dir);
  fs::create_directories(run_dir);
  folder = images.string();
  job["run_dir"] = run_dir.string();
  job["attempt"] = 1;
  job.erase("feature_cache");
  job.erase("resume");
  std::ofstream(run_dir / "job.json") << job.dump(2);

  RunResult r = run(SWEEP_WORKER_BIN, (run_dir / "job.json").string());
  EXPECT_EQ(r.exit_code, 1) << r.err;  // bad input, not 2 (internal error)
  std::vector<json> events = read_events(run_dir / "events.jsonl");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["type"], "failed");
  EXPECT_EQ(events.back()["bad_input"], true) << events.back();
  EXPECT_TRUE(contains(events.back()["message"], images.string())) << events.back();
}

}  // namespace
