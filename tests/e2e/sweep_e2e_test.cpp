// A small version of the demo through the real programs: a tiny random LLaVA with a tokenizer
// trained here, the built-in shapes data made in an empty cache, a 2-job LoRA sweep run by
// `sweep run` with the real `sweep-worker`, then the results commands and the merge.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
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

// A GPU test needs a CUDA device; nvidia-smi lists one per line ("GPU 0: ...").
bool has_cuda_device() { return run("nvidia-smi -L 2>/dev/null").out.find("GPU ") == 0; }

std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

class SweepEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("sweep-e2e-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "model");
    env_ = "cd " + root_.string() + " && SWEEP_CACHE=" + (root_ / "cache").string() + " ";
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }

  // A tokenizer trained on words of the shapes world, and a random tiny LLaVA sized to it.
  void make_model() {
    std::ofstream corpus(root_ / "corpus.txt");
    corpus << "A chat between a curious user and an artificial intelligence assistant. The "
              "assistant gives helpful, detailed, and polite answers to the user's questions.\n"
              "USER: ASSISTANT:\n";
    for (const char* line :
         {"What colour is the circle? red green blue yellow purple orange",
          "What shape is the red object? circle square triangle",
          "How many shapes are there? one two three", "Where is the blue square? left right",
          "centre top bottom. Is there a green triangle? yes no", "Describe the image."})
      corpus << line << "\n";
    corpus.close();
    std::string model = (root_ / "model").string();
    // init-model writes the directory whole, so the tokenizer goes in after it.
    ASSERT_EQ(run(std::string(SWEEP_WORKER_BIN) +
                  " init-model --preset tiny --vocab-size 400 --out " + model + " 2>&1")
                  .code,
              0);
    ASSERT_EQ(run(std::string(SWEEP_TOKENIZER_BIN) + " " + (root_ / "corpus.txt").string() + " " +
                  model + "/tokenizer.model 400 2>&1")
                  .code,
              0);
    ASSERT_TRUE(fs::exists(root_ / "model" / "config.json"));
    ASSERT_TRUE(fs::exists(root_ / "model" / "tokenizer.model"));
  }

  // `resources` is the sweep file's line, e.g. "{slots: 2, threads_per_job: 1}".
  void write_spec(const std::string& resources = "{slots: 2, threads_per_job: 1}") {
    std::ofstream spec(root_ / "tiny.yaml");
    spec << "name: tiny\n"
            "base_model: model\n"
            "data:\n"
            "  train: builtin:shapes/vqa_train.json\n"
            "  val: builtin:shapes/vqa_val.json\n"
            "  image_folder: builtin:shapes/images\n"
            "train: {max_steps: 4, eval_every: 2, eval_samples: 6, batch_size: 2, max_new_tokens: "
            "4}\n"
            "grid:\n"
            "  lora_r: [2, 4]\n"
            "  lora_alpha: {times: lora_r, values: [2]}\n"
            "  learning_rate: [1.0e-3]\n"
            "objective: {metric: val_loss, mode: min}\n"
            "resources: "
         << resources << "\n";
  }

  json query(const std::string& sql) {
    Output r = run(env_ + SWEEP_BIN + " query \"" + sql + "\" --format json");
    EXPECT_EQ(r.code, 0) << r.out;
    return json::parse(r.out, nullptr, false);
  }

  fs::path root_;
  std::string env_;
};

TEST_F(SweepEndToEnd, TwoJobSweepRecordsCurvesRanksAndMerges) {
  ASSERT_NO_FATAL_FAILURE(make_model());
  write_spec();

  Output ran = run(env_ + SWEEP_BIN + " run tiny.yaml 2>&1");
  ASSERT_EQ(ran.code, 0) << ran.out;

  json jobs = query("SELECT hash, state FROM jobs ORDER BY hash");
  ASSERT_EQ(jobs.size(), 2u) << jobs.dump();
  for (const json& j : jobs) EXPECT_EQ(j["state"], "succeeded") << jobs.dump();

  // Loss curves: one train_loss row per step and job; evaluations at steps 0, 2 and 4.
  json curves =
      query("SELECT job_id, COUNT(*) AS n FROM metrics WHERE name = 'train_loss' GROUP BY job_id");
  ASSERT_EQ(curves.size(), 2u);
  for (const json& c : curves) EXPECT_EQ(c["n"].get<int>(), 4);
  json evals =
      query("SELECT COUNT(DISTINCT step) AS n FROM eval_metrics WHERE name = 'val_exact_match'");
  EXPECT_EQ(evals[0]["n"].get<int>(), 3);

  Output board = run(env_ + SWEEP_BIN + " leaderboard tiny --format json");
  ASSERT_EQ(board.code, 0) << board.out;
  json rows = json::parse(board.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_LE(rows[0]["val_loss"].get<double>(), rows[1]["val_loss"].get<double>());

  Output best = run(env_ + SWEEP_BIN + " best tiny");
  ASSERT_EQ(best.code, 0);
  std::string ckpt = last_line(best.out);
  ASSERT_TRUE(fs::is_directory(ckpt)) << ckpt;
  EXPECT_TRUE(fs::exists(fs::path(ckpt) / "adapter_model.safetensors"));

  // The merged model scores the val set exactly as base + adapter does.
  std::string merged = (root_ / "merged").string();
  Output merge = run(env_ + SWEEP_BIN + " merge " + ckpt + " --out " + merged + " 2>&1");
  ASSERT_EQ(merge.code, 0) << merge.out;
  // A directory Hugging Face's loaders open: weights, tokenizer, generation and image configs.
  for (const char* f :
       {"config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json",
        "special_tokens_map.json", "generation_config.json", "preprocessor_config.json"})
    EXPECT_TRUE(fs::exists(fs::path(merged) / f)) << f;
  std::ifstream pre(fs::path(merged) / "preprocessor_config.json");
  json processor = json::parse(pre, nullptr, false);
  json model_config = json::parse(std::ifstream(fs::path(merged) / "config.json"), nullptr, false);
  EXPECT_EQ(processor["crop_size"]["height"], model_config["vision_config"]["image_size"]);
  std::string data = " --data " + (root_ / "cache/shapes-v2/vqa_val.json").string() +
                     " --image-folder " + (root_ / "cache/shapes-v2/images").string() +
                     " --max-new-tokens 4 --precision fp32 2>/dev/null";  // not bf16 (auto)
  Output with_adapter = run(env_ + SWEEP_WORKER_BIN + " score --model " +
                            (root_ / "model").string() + " --adapter " + ckpt + data);
  Output on_merged = run(env_ + SWEEP_WORKER_BIN + " score --model " + merged + data);
  ASSERT_EQ(with_adapter.code, 0) << with_adapter.out;
  ASSERT_EQ(on_merged.code, 0) << on_merged.out;
  json a = json::parse(last_line(with_adapter.out));
  json b = json::parse(last_line(on_merged.out));
  EXPECT_NEAR(a["val_loss"].get<double>(), b["val_loss"].get<double>(), 1e-5);
  EXPECT_EQ(a["val_exact_match"], b["val_exact_match"]);
}

// Packing through the real programs: with `pack: 2` and one slot, both jobs train in one worker
// process (one pack id on both attempts), and each job's curve is the one it has alone.
TEST_F(SweepEndToEnd, PackedJobsShareOneWorkerAndKeepTheirOwnCurves) {
  ASSERT_NO_FATAL_FAILURE(make_model());
  write_spec("{slots: 1, threads_per_job: 1, pack: 2}");
  Output packed = run(env_ + SWEEP_BIN + " run tiny.yaml 2>&1");
  ASSERT_EQ(packed.code, 0) << packed.out;
  // The same jobs alone, as another sweep of the same database.
  std::ifstream in(root_ / "tiny.yaml");
  std::string spec((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  spec.replace(spec.find("name: tiny"), 10, "name: alone");
  spec.replace(spec.find(", pack: 2"), 9, "");
  std::ofstream(root_ / "alone.yaml") << spec;
  Output alone = run(env_ + SWEEP_BIN + " run alone.yaml 2>&1");
  ASSERT_EQ(alone.code, 0) << alone.out;

  json packs = query(
      "SELECT COUNT(*) AS n, COUNT(DISTINCT a.pack_id) AS packs, MIN(a.pack_id) AS id FROM "
      "attempts a JOIN jobs j ON j.id = a.job_id JOIN sweeps s ON s.id = j.sweep_id "
      "WHERE s.name = 'tiny'");
  EXPECT_EQ(packs[0]["n"].get<int>(), 2) << packs.dump();
  EXPECT_EQ(packs[0]["packs"].get<int>(), 1) << packs.dump();
  EXPECT_FALSE(packs[0]["id"].is_null()) << packs.dump();

  json pairs = query(
      "SELECT jp.hash, mp.step, mp.value AS packed, ma.value AS alone FROM jobs jp "
      "JOIN sweeps sp ON sp.id = jp.sweep_id AND sp.name = 'tiny' "
      "JOIN jobs ja ON ja.hash = jp.hash AND ja.id != jp.id "
      "JOIN metrics mp ON mp.job_id = jp.id AND mp.name = 'train_loss' "
      "JOIN metrics ma ON ma.job_id = ja.id AND ma.name = 'train_loss' AND ma.step = mp.step");
  ASSERT_EQ(pairs.size(), 8u) << pairs.dump();  // 2 jobs x 4 steps
  for (const json& p : pairs)
    EXPECT_NEAR(p["packed"].get<double>(), p["alone"].get<double>(), 1e-5) << p.dump();
}

// Early stopping through the real programs: the worker evaluates where job.json's rungs say, the
// orchestrator judges each evaluation as it is stored and stops the job that falls behind. One
// slot, so the order is fixed: the job at lr 3e-3 reaches each rung first (alone there, it
// continues); the one at lr 1e-7 barely moves from the base and is the worse of two at rung 0.
// (Rung 0 sits past the first step: after one update from B = 0 both models still score alike.)
TEST_F(SweepEndToEnd, AshaStopsTheJobThatFallsBehind) {
  ASSERT_NO_FATAL_FAILURE(make_model());
  {
    std::ofstream spec(root_ / "asha.yaml");
    spec << "name: asha\n"
            "base_model: model\n"
            "data:\n"
            "  train: builtin:shapes/vqa_train.json\n"
            "  val: builtin:shapes/vqa_val.json\n"
            "  image_folder: builtin:shapes/images\n"
            "train: {max_steps: 8, eval_every: 0, eval_samples: 6, batch_size: 2, "
            "max_new_tokens: 4, warmup_steps: 0, lr_scheduler: constant}\n"
            "grid:\n"
            "  lora_r: [4]\n"
            "  lora_alpha: [8]\n"
            "  learning_rate: [3.0e-3, 1.0e-7]\n"
            "objective: {metric: val_loss, mode: min}\n"
            "early_stopping: {type: asha, grace: 600, reduction_factor: 2}\n"
            "resources: {slots: 1, threads_per_job: 1}\n";
  }
  Output ran = run(env_ + SWEEP_BIN + " run asha.yaml 2>&1");
  ASSERT_EQ(ran.code, 0) << ran.out;

  json jobs = query(
      "SELECT json_extract(params, '$.learning_rate') AS lr, state, error FROM jobs ORDER BY lr "
      "DESC");
  ASSERT_EQ(jobs.size(), 2u) << jobs.dump();
  EXPECT_EQ(jobs[0]["state"], "succeeded") << jobs.dump();
  EXPECT_EQ(jobs[1]["state"], "pruned") << jobs.dump() << ran.out;

  json decisions = query(
      "SELECT json_extract(j.params, '$.learning_rate') AS lr, d.rung, d.rung_tokens, "
      "d.tokens_seen, d.step, d.action, d.rank, d.peers FROM decisions d JOIN jobs j ON j.id = "
      "d.job_id ORDER BY d.id");
  ASSERT_FALSE(decisions.empty()) << ran.out;
  json slow_stop;
  for (const json& d : decisions) {
    EXPECT_GE(d["tokens_seen"].get<int64_t>(), d["rung_tokens"].get<int64_t>()) << d.dump();
    if (d["lr"].get<double>() > 1e-3) {
      EXPECT_EQ(d["action"], "continue") << decisions.dump();
    } else {
      slow_stop = d;
    }
  }
  ASSERT_FALSE(slow_stop.is_null()) << decisions.dump();
  EXPECT_EQ(slow_stop["rung"], 0);
  EXPECT_EQ(slow_stop["action"], "stop");
  EXPECT_EQ(slow_stop["rank"], 2);
  EXPECT_EQ(slow_stop["peers"], 2);
  // The pruned job trained only a little past its rung, and its evaluations carry the tokens.
  json trained = query(
      "SELECT MAX(m.step) AS steps FROM metrics m JOIN jobs j ON j.id = m.job_id "
      "WHERE j.state = 'pruned'");
  EXPECT_LT(trained[0]["steps"].get<int>(), 8) << trained.dump();
  json untagged = query("SELECT COUNT(*) AS n FROM eval_metrics WHERE tokens_seen IS NULL");
  EXPECT_EQ(untagged[0]["n"], 0);

  Output status = run(env_ + SWEEP_BIN + " status asha");
  ASSERT_EQ(status.code, 0);
  EXPECT_NE(status.out.find("pruned 1"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("rank 2 of 2 (cutoff"), std::string::npos) << status.out;
  Output board = run(env_ + SWEEP_BIN + " leaderboard asha --format json");
  ASSERT_EQ(board.code, 0);
  json rows = json::parse(board.out);
  ASSERT_EQ(rows.size(), 2u) << board.out;
  EXPECT_EQ(rows[1]["state"], "pruned");
  EXPECT_EQ(rows[1]["rung"], 0);
}

// A job that cannot get its memory ends `infeasible` and is not retried, with its estimate in the
// message; `sweep plan` flags it beforehand against a slot's memory_gb. The worker runs under
// an address-space limit (prlimit) that a batch of 2 fits and a batch of 64 does not, so the
// allocation fails for real inside LibTorch.
TEST_F(SweepEndToEnd, AJobThatRunsOutOfMemoryIsInfeasibleAndNotRetried) {
  if (run("command -v prlimit").code != 0) GTEST_SKIP() << "no prlimit (util-linux)";
  ASSERT_NO_FATAL_FAILURE(make_model());
  write_spec("{slots: 1, threads_per_job: 1, memory_gb: 0.5}");
  std::ifstream in(root_ / "tiny.yaml");
  std::string spec((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  spec.replace(spec.find("batch_size: 2"), 13, "batch_size: 64");
  spec.replace(spec.find("  lora_r: [2, 4]"), 16, "  lora_r: [2]");
  spec += "retries: 2\nworker: {command: [prlimit, --as=1500000000, " +
          std::string(SWEEP_WORKER_BIN) + "]}\n";
  std::ofstream(root_ / "tiny.yaml") << spec;

  Output plan = run(env_ + SWEEP_BIN + " plan tiny.yaml --format json 2>/dev/null");
  ASSERT_EQ(plan.code, 0) << plan.out;
  json planned = json::parse(plan.out);
  const json& memory = planned["jobs"][0]["memory"];
  EXPECT_FALSE(memory["fits"].get<bool>()) << memory.dump();
  EXPECT_GT(memory["total"].get<int64_t>(), int64_t{1} << 29);
  bool warned = false;
  for (const json& w : planned["warnings"]) warned |= w["id"] == "does-not-fit";
  EXPECT_TRUE(warned) << planned["warnings"].dump();

  Output ran = run(env_ + SWEEP_BIN + " run tiny.yaml 2>&1");
  EXPECT_NE(ran.out.find("infeasible"), std::string::npos) << ran.out;
  json attempts = query(
      "SELECT a.state, a.exit_code, a.error, j.state AS job_state FROM attempts a JOIN jobs j "
      "ON j.id = a.job_id");
  ASSERT_EQ(attempts.size(), 1u) << attempts.dump();  // retries: 2, yet one attempt
  EXPECT_EQ(attempts[0]["state"], "infeasible") << attempts.dump();
  EXPECT_EQ(attempts[0]["job_state"], "infeasible");
  const std::string error = attempts[0]["error"].get<std::string>();
  EXPECT_NE(error.find("out of memory"), std::string::npos) << error;
  EXPECT_NE(error.find("estimated peak memory: ~"), std::string::npos) << error;
}

// Label gpu (tests/e2e/CMakeLists.txt): both jobs of the sweep share GPU 0 at the same time.
TEST_F(SweepEndToEnd, GpuTwoJobsShareOneGpu) {
  if (!has_cuda_device()) GTEST_SKIP() << "no CUDA device (nvidia-smi -L lists none)";
  ASSERT_NO_FATAL_FAILURE(make_model());
  write_spec("{gpus: [0], jobs_per_gpu: 2}");

  Output ran = run(env_ + SWEEP_BIN + " run tiny.yaml 2>&1");
  ASSERT_EQ(ran.code, 0) << ran.out;
  json attempts = query(
      "SELECT a.device, a.started_at, a.finished_at, j.state FROM attempts a JOIN jobs j ON "
      "j.id = a.job_id ORDER BY a.started_at");
  ASSERT_EQ(attempts.size(), 2u) << attempts.dump();
  for (const json& a : attempts) {
    EXPECT_EQ(a["state"], "succeeded") << attempts.dump();
    EXPECT_NE(a["device"].get<std::string>().find("cuda"), std::string::npos) << attempts.dump();
  }
  // The second started before the first finished: they ran side by side on the one GPU.
  EXPECT_LT(attempts[1]["started_at"].get<double>(), attempts[0]["finished_at"].get<double>());
  json evals = query("SELECT COUNT(*) AS n FROM eval_metrics WHERE name = 'val_loss'");
  EXPECT_EQ(evals[0]["n"].get<int>(), 6);  // steps 0, 2, 4 of each job
}

}  // namespace
