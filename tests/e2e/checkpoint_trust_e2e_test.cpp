// Checkpoints that say what they were trained on, and merges that prove they kept the adapter,
// through the real programs: a one-job LoRA sweep on a tiny model trained here, then its adapter
// put on a second base of the same shapes (another seed), which score, predict, merge and resume
// refuse, naming both bases; merges in each dtype print their verification figures and pass; a
// merged file with one tensor changed fails verification.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/common/cli_run.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using sweep::testing::RunResult;
using sweep::testing::shell_quote;

std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Adds `delta` to every element of one fp32 tensor of a .safetensors file, in place.
void tamper(const std::string& path, const std::string& tensor, float delta) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t header_size = 0;
  f.read(reinterpret_cast<char*>(&header_size), sizeof header_size);
  std::string header(header_size, '\0');
  f.read(header.data(), static_cast<std::streamsize>(header_size));
  const json h = json::parse(header);
  ASSERT_TRUE(h.contains(tensor)) << header;
  ASSERT_EQ(h[tensor]["dtype"], "F32");
  const uint64_t begin = h[tensor]["data_offsets"][0], end = h[tensor]["data_offsets"][1];
  std::vector<float> values((end - begin) / sizeof(float));
  const auto at = static_cast<std::streamoff>(8 + header_size + begin);
  f.seekg(at);
  f.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(end - begin));
  for (float& v : values) v += delta;
  f.seekp(at);
  f.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(end - begin));
  ASSERT_TRUE(f.good());
}

class CheckpointTrust : public ::testing::Test {
 protected:
  // One sweep for the whole suite: a tiny base, a second base of the same config with another
  // seed (the same tokenizer), and one 2-step LoRA job.
  static void SetUpTestSuite() {
    root_ = fs::path(::testing::TempDir()) / ("ckpt-trust-e2e-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "scratch");
    env_ = "cd " + shell_quote(root_.string()) +
           " && SWEEP_CACHE=" + shell_quote((root_ / "cache").string()) + " ";
    std::ofstream corpus(root_ / "corpus.txt");
    corpus << "A chat between a curious user and an artificial intelligence assistant. The "
              "assistant gives helpful, detailed, and polite answers to the user's questions.\n"
              "USER: ASSISTANT:\n"
              "What colour is the circle? red green blue yellow purple orange\n"
              "What shape is the red object? circle square triangle\n"
              "How many shapes are there? one two three. Where is the blue square? left right\n"
              "centre top bottom. Is there a green triangle? yes no. Describe the image.\n";
    corpus.close();
    base_ = (root_ / "model").string();
    other_ = (root_ / "other").string();
    setup_ok_ = worker("init-model --preset tiny --vocab-size 400 --out " + base_).exit_code == 0 &&
                run(SWEEP_TOKENIZER_BIN,
                    (root_ / "corpus.txt").string() + " " + base_ + "/tokenizer.model 400")
                        .exit_code == 0 &&
                worker("init-model --config " + base_ + "/config.json --seed 7 --out " + other_)
                        .exit_code == 0;
    if (!setup_ok_) return;
    fs::copy_file(base_ + "/tokenizer.model", other_ + "/tokenizer.model",
                  fs::copy_options::overwrite_existing);
    std::ofstream(root_ / "tiny.yaml")
        << "name: tiny\n"
           "base_model: model\n"
           "data:\n"
           "  train: builtin:shapes/vqa_train.json\n"
           "  val: builtin:shapes/vqa_val.json\n"
           "  image_folder: builtin:shapes/images\n"
           "train: {max_steps: 2, eval_every: 2, eval_samples: 4, batch_size: 2, "
           "max_new_tokens: 2, learning_rate: 1.0e-2, lora_r: 4, lora_alpha: 8}\n"
           "objective: {metric: val_loss, mode: min}\n"
           "resources: {slots: 1, threads_per_job: 1}\n";
    RunResult ran = sweep("run tiny.yaml");
    // The job's last checkpoint (one job, one evaluation after step 0).
    const fs::path runs = root_ / "runs" / "tiny";
    for (const auto& job : fs::directory_iterator(fs::is_directory(runs) ? runs : root_)) {
      const fs::path dir = job.path() / "checkpoints";
      if (!fs::is_directory(dir)) continue;
      for (const auto& step : fs::directory_iterator(dir))
        if (step.path().filename().string().rfind("step-", 0) == 0) ckpt_ = step.path().string();
    }
    setup_ok_ = ran.exit_code == 0 && fs::is_directory(ckpt_);
    if (!setup_ok_) std::cerr << ran.out << ran.err;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  void SetUp() override { ASSERT_TRUE(setup_ok_) << "the tiny sweep could not be made"; }

  static RunResult run(const std::string& program, const std::string& args) {
    return sweep::testing::run_program(program, args, (root_ / "scratch").string(), env_);
  }
  static RunResult worker(const std::string& args) { return run(SWEEP_WORKER_BIN, args); }
  static RunResult sweep(const std::string& args) { return run(SWEEP_BIN, args); }

  static std::string val_data() { return (root_ / "cache/shapes-v2/vqa_val.json").string(); }
  static std::string images() { return (root_ / "cache/shapes-v2/images").string(); }

  // The refusal of an adapter on `other_`: exit 1, both bases named, a hint.
  static void expect_refused(const RunResult& r) {
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "was trained on another base model (")) << r.err;
    EXPECT_TRUE(contains(r.err, "weights")) << r.err;
    EXPECT_TRUE(contains(r.err, "trained on: " + fs::absolute(base_).string())) << r.err;
    EXPECT_TRUE(contains(r.err, "given:      " + fs::absolute(other_).string())) << r.err;
    EXPECT_TRUE(contains(r.err, "hint:")) << r.err;
  }

  static inline fs::path root_;
  static inline std::string env_, base_, other_, ckpt_;
  static inline bool setup_ok_ = false;
};

TEST_F(CheckpointTrust, ACheckpointCarriesItsManifest) {
  std::ifstream in(fs::path(ckpt_) / "manifest.json");
  ASSERT_TRUE(in) << ckpt_;
  const json m = json::parse(in);
  EXPECT_EQ(m["format"], 1);
  EXPECT_EQ(m["base_model"]["path"], fs::absolute(base_).string());
  for (const char* field : {"config", "tensors", "weights", "tokenizer"})
    EXPECT_FALSE(m["base_model"]["fingerprint"][field].get<std::string>().empty()) << field;
  EXPECT_EQ(m["conversation_template"], "vicuna_v1");
  EXPECT_EQ(m["lora"]["r"], 4);
  EXPECT_EQ(m["params"]["max_steps"], 2);
  EXPECT_EQ(m["data"]["val"]["path"], val_data());
  EXPECT_FALSE(m["data"]["train"]["hash"].get<std::string>().empty());
  EXPECT_EQ(m["step"], 2);
  EXPECT_TRUE(m["metrics"].contains("val_loss"));
}

TEST_F(CheckpointTrust, AnAdapterOnAnotherBaseIsRefusedByScorePredictAndMerge) {
  expect_refused(worker("score --model " + other_ + " --adapter " + ckpt_ + " --data " +
                        val_data() + " --image-folder " + images() + " --max-new-tokens 2"));
  expect_refused(worker("predict --model " + other_ + " --adapter " + ckpt_ +
                        " --prompt 'What shape is it?' --max-new-tokens 2"));
  const fs::path out = root_ / "refused-merge";
  RunResult merge = sweep("merge " + ckpt_ + " --base " + other_ + " --out " + out.string());
  expect_refused(merge);
  EXPECT_FALSE(fs::exists(out));
  // On its own base the adapter is accepted.
  RunResult own = worker("score --model " + base_ + " --adapter " + ckpt_ + " --data " +
                         val_data() + " --image-folder " + images() + " --max-new-tokens 2");
  EXPECT_EQ(own.exit_code, 0) << own.err;
  EXPECT_FALSE(contains(own.err, "notice")) << own.err;
}

TEST_F(CheckpointTrust, ResumeOnAnotherBaseIsRefused) {
  const fs::path job_dir = fs::path(ckpt_).parent_path().parent_path();
  const fs::path copy = root_ / "resume-run";
  fs::remove_all(copy);
  fs::copy(job_dir, copy, fs::copy_options::recursive);
  fs::remove(copy / "events.jsonl");
  json job = json::parse(std::ifstream(copy / "job.json"));
  job["run_dir"] = copy.string();
  job["base_model"] = other_;
  job["params"]["max_steps"] = 4;
  job["resume"] = true;
  std::ofstream(copy / "job.json") << job.dump(2);
  RunResult r = worker((copy / "job.json").string());
  expect_refused(r);
  std::ifstream events(copy / "events.jsonl");
  std::string line, last;
  while (std::getline(events, line)) last = line;
  const json failed = json::parse(last);
  EXPECT_EQ(failed["type"], "failed") << last;
  EXPECT_EQ(failed["stage"], "load_model") << last;
}

TEST_F(CheckpointTrust, ACheckpointWithoutAManifestIsAcceptedWithANotice) {
  const fs::path old = root_ / "old-checkpoint";
  fs::remove_all(old);
  fs::copy(ckpt_, old, fs::copy_options::recursive);
  fs::remove(old / "manifest.json");
  RunResult r = worker("score --model " + base_ + " --adapter " + old.string() + " --data " +
                       val_data() + " --image-folder " + images() + " --max-new-tokens 2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "has no manifest.json (written by an older version)")) << r.err;
}

TEST_F(CheckpointTrust, EachDtypesMergePrintsItsFiguresAndPasses) {
  for (const char* dtype : {"fp32", "bf16", "fp16"}) {
    const fs::path out = root_ / (std::string("merged-") + dtype);
    RunResult r = sweep("merge " + ckpt_ + " --out " + out.string() + " --dtype " + dtype +
                        " --verify-samples 3");
    EXPECT_EQ(r.exit_code, 0) << dtype << "\n" << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "verify: reload: every tensor present")) << r.out;
    EXPECT_TRUE(contains(r.out, "verify: logits over 3 samples")) << r.out;
    EXPECT_TRUE(contains(r.out, "verify: val_loss adapter on base")) << r.out;
    EXPECT_EQ(last_line(r.out), fs::absolute(out).string());
    EXPECT_TRUE(fs::exists(out / "model.safetensors")) << dtype;
    // Nothing but the result is left beside it.
    for (const auto& entry : fs::directory_iterator(root_))
      EXPECT_FALSE(contains(entry.path().filename().string(), ".merging-")) << entry.path();
    std::cout << dtype << ":\n" << r.out;
  }
}

TEST_F(CheckpointTrust, AMergedFileWithOneTensorChangedFailsVerification) {
  const fs::path out = root_ / "merged-tampered";
  RunResult merge = worker("merge " + ckpt_ + " --base " + base_ + " --out " + out.string() +
                           " --verify-samples 2");
  ASSERT_EQ(merge.exit_code, 0) << merge.out << merge.err;
  const std::string verify =
      "verify-merge " + out.string() + " --adapter " + ckpt_ + " --verify-samples 2";
  RunResult clean = worker(verify);
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  ASSERT_NO_FATAL_FAILURE(tamper((out / "model.safetensors").string(),
                                 "language_model.model.layers.0.self_attn.v_proj.weight", 0.05f));
  RunResult tampered = worker(verify);
  EXPECT_EQ(tampered.exit_code, 1) << tampered.out << tampered.err;
  EXPECT_TRUE(contains(tampered.out, "FAILED")) << tampered.out;
  EXPECT_TRUE(contains(tampered.err, "does not match the adapter on its base")) << tampered.err;
}

}  // namespace
