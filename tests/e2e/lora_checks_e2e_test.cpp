// The LoRA target report and the learning check through the real programs on a tiny model:
// targets that reach only the vision tower are refused before any job starts, every job reports
// the modules it adapted, a job at learning rate 0 is flagged not_learning (and, when asked,
// stopped and failed without retry) while a healthy job passes.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Output {
  int code = -1;
  std::string out;
};

// Runs a shell command line made only of paths this test created; captures stdout.
Output run(const std::string& cmd) {
  Output r;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in, nullptr, false);
}

class LoraChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("sweep-lora-checks-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "model");
    env_ = "cd " + root_.string() + " && SWEEP_CACHE=" + (root_ / "cache").string() + " ";
    make_model();
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }

  // A tokenizer trained on words of the shapes world, and a random tiny LLaVA sized to it.
  void make_model() {
    std::ofstream corpus(root_ / "corpus.txt");
    corpus << "A chat between a curious user and an artificial intelligence assistant. The "
              "assistant gives helpful, detailed, and polite answers to the user's questions.\n"
              "USER: ASSISTANT:\n"
              "What colour is the circle? red green blue yellow purple orange\n"
              "What shape is the red object? circle square triangle\n"
              "How many shapes are there? one two three. Where is it? left right centre\n";
    corpus.close();
    const std::string model = (root_ / "model").string();
    ASSERT_EQ(run(std::string(SWEEP_WORKER_BIN) +
                  " init-model --preset tiny --vocab-size 300 --out " + model + " 2>&1")
                  .code,
              0);
    ASSERT_EQ(run(std::string(SWEEP_TOKENIZER_BIN) + " " + (root_ / "corpus.txt").string() + " " +
                  model + "/tokenizer.model 300 2>&1")
                  .code,
              0);
  }

  // A sweep file over the tiny model; `train` and `grid` are its flow-style lines.
  void write_spec(const std::string& name, const std::string& train, const std::string& grid,
                  int retries = 0) {
    std::ofstream spec(root_ / (name + ".yaml"));
    spec << "name: " << name
         << "\n"
            "base_model: model\n"
            "data:\n"
            "  train: builtin:shapes/vqa_train.json\n"
            "  val: builtin:shapes/vqa_val.json\n"
            "  image_folder: builtin:shapes/images\n"
            "train: {max_steps: 4, eval_samples: 2, batch_size: 2, max_new_tokens: 2, "
         << train << "}\n"
         << "grid: " << grid << "\n"
         << "objective: {metric: val_loss, mode: min}\n"
            "resources: {slots: 2, threads_per_job: 1}\n"
            "retries: "
         << retries << "\n";
  }

  json query(const std::string& sql) {
    Output r = run(env_ + SWEEP_BIN + " query \"" + sql + "\" --format json");
    EXPECT_EQ(r.code, 0) << r.out;
    return json::parse(r.out, nullptr, false);
  }

  fs::path root_;
  std::string env_;
};

TEST_F(LoraChecks, TargetsThatReachOnlyTheVisionTowerAreRefusedBeforeAnyJob) {
  write_spec("clip", "target_modules: [q_proj, fc1]", "{learning_rate: [1.0e-3]}");
  const std::string fc1_0 = "vision_tower.vision_model.encoder.layers.0.mlp.fc1";
  const std::string fc1_1 = "vision_tower.vision_model.encoder.layers.1.mlp.fc1";
  for (const char* command :
       {" lint clip.yaml 2>&1", " plan clip.yaml 2>&1", " run clip.yaml 2>&1"}) {
    Output r = run(env_ + SWEEP_BIN + command);
    EXPECT_EQ(r.code, 1) << command << "\n" << r.out;
    EXPECT_NE(r.out.find("lora target_modules [fc1, q_proj]: 'fc1' matches no module of the "
                         "language model, only 2 of the vision tower: " +
                         fc1_0 + ", " + fc1_1),
              std::string::npos)
        << command << "\n"
        << r.out;
  }
  if (fs::exists(root_ / "runs" / "clip"))
    for (const auto& entry : fs::recursive_directory_iterator(root_ / "runs" / "clip"))
      EXPECT_NE(entry.path().filename(), "events.jsonl") << "a worker ran: " << entry.path();

  // Asked for by path, the tower's fc1 is adapted, and the report says so.
  write_spec("clip_asked", "target_modules: [q_proj, " + fc1_0 + "]", "{learning_rate: [1.0e-3]}");
  Output asked = run(env_ + SWEEP_BIN + " run clip_asked.yaml 2>&1");
  ASSERT_EQ(asked.code, 0) << asked.out;
  json info = query("SELECT json_extract(info, '$.lora_targets.counts') AS c FROM jobs");
  ASSERT_EQ(info.size(), 1u) << info.dump();
  const json counts = json::parse(info[0]["c"].get<std::string>());
  EXPECT_EQ(counts["language_model"], 4);  // q_proj of 4 layers
  EXPECT_EQ(counts["vision_tower"], 1);
  EXPECT_EQ(counts["projector"], 0);
}

TEST_F(LoraChecks, LearningRateZeroIsFlaggedAndAHealthyJobPasses) {
  write_spec("lr", "learning_check_steps: 4, warmup_steps: 1", "{learning_rate: [0, 1.0e-2]}");
  Output r = run(env_ + SWEEP_BIN + " run lr.yaml 2>&1");
  ASSERT_EQ(r.code, 0) << r.out;
  json rows = query(
      "SELECT json_extract(j.params, '$.learning_rate') AS lr, l.step, l.passed, l.lora_b_norm "
      "AS b, l.lora_grad_norm AS g, l.reason, j.state, j.run_dir FROM learning_checks l JOIN "
      "jobs j ON j.id = l.job_id ORDER BY lr");
  ASSERT_EQ(rows.size(), 2u) << rows.dump();
  const json& zero = rows[0];
  const json& healthy = rows[1];
  EXPECT_EQ(zero["step"], 4);
  EXPECT_EQ(zero["passed"], 0);
  EXPECT_EQ(zero["b"], 0.0);                // B never left zero
  EXPECT_GT(zero["g"].get<double>(), 0.0);  // gradients did reach the adapters
  EXPECT_NE(zero["reason"].get<std::string>().find("LoRA B norm is 0"), std::string::npos)
      << zero["reason"];
  EXPECT_EQ(zero["state"], "succeeded");  // flagged, not stopped
  EXPECT_EQ(healthy["passed"], 1) << healthy["reason"];
  EXPECT_GT(healthy["b"].get<double>(), 0.0);
  EXPECT_EQ(healthy["reason"], "");

  json board = query(
      "SELECT json_extract(params, '$.learning_rate') AS lr, not_learning "
      "FROM leaderboard ORDER BY lr");
  ASSERT_EQ(board.size(), 2u) << board.dump();
  EXPECT_EQ(board[0]["not_learning"], 1);
  EXPECT_EQ(board[1]["not_learning"], 0);

  // Each job names its adapted modules; the adapter config keeps PEFT off CLIP.
  const fs::path run_dir = healthy["run_dir"].get<std::string>();
  const json targets = read_json(run_dir / "lora_targets.json");
  EXPECT_EQ(targets["counts"]["language_model"], 28);  // 7 projections x 4 layers
  EXPECT_EQ(targets["counts"]["vision_tower"], 0);
  EXPECT_EQ(targets["left_out"].size(), 6u);  // CLIP's q/k/v_proj x 2 layers
  bool found_config = false;
  for (const auto& entry : fs::recursive_directory_iterator(run_dir / "checkpoints")) {
    if (entry.path().filename() != "adapter_config.json") continue;
    found_config = true;
    const json config = read_json(entry.path());
    ASSERT_TRUE(config["target_modules"].is_string()) << config.dump();
    const std::regex peft(config["target_modules"].get<std::string>());
    EXPECT_TRUE(std::regex_match("language_model.model.layers.3.mlp.down_proj", peft));
    EXPECT_TRUE(std::regex_match("model.language_model.layers.3.mlp.down_proj", peft));
    EXPECT_FALSE(
        std::regex_match("vision_tower.vision_model.encoder.layers.0.self_attn.q_proj", peft));
  }
  EXPECT_TRUE(found_config);
}

TEST_F(LoraChecks, StopIfNotLearningFailsTheJobWithoutRetry) {
  write_spec("stop", "learning_check_steps: 2, stop_if_not_learning: true", "{learning_rate: [0]}",
             /*retries=*/2);
  Output r = run(env_ + SWEEP_BIN + " run stop.yaml 2>&1");
  EXPECT_EQ(r.code, 3) << r.out;  // a job ended failed: kSweepExitJobsFailed
  EXPECT_NE(r.out.find("failed: learning_check: not learning at step 2"), std::string::npos)
      << r.out;
  json jobs = query(
      "SELECT state, attempt, json_extract(info, '$.failed.stage') AS stage, "
      "json_extract(info, '$.failed.not_learning') AS nl, error, "
      "(SELECT MAX(step) FROM metrics m WHERE m.job_id = jobs.id) AS last_step FROM jobs");
  ASSERT_EQ(jobs.size(), 1u) << jobs.dump();
  const json& job = jobs[0];
  EXPECT_EQ(job["state"], "failed");
  EXPECT_EQ(job["attempt"], 1) << "retried";
  EXPECT_EQ(job["stage"], "learning_check");
  EXPECT_EQ(job["nl"], 1);
  EXPECT_NE(job["error"].get<std::string>().find("not learning at step 2"), std::string::npos)
      << job["error"];
  EXPECT_EQ(job["last_step"], 2) << "trained past the check";
  json check = query("SELECT passed FROM learning_checks");
  ASSERT_EQ(check.size(), 1u);
  EXPECT_EQ(check[0]["passed"], 0);
}

}  // namespace
