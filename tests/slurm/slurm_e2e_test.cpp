// The Slurm executor through a real single-node cluster (scripts/slurm-cluster.sh) and the real
// programs: a tiny random LLaVA, the built-in shapes data, `sweep run` submitting `sweep-worker`
// with sbatch. Without a cluster the tests skip, unless SWEEP_REQUIRE_SLURM=1 (CI), where a
// missing cluster fails them. The cluster is found through SLURM_CONF, else
// $SWEEP_SLURM_DIR/slurm.conf (default /tmp/llava-sweep-slurm/slurm.conf).
//
// Waits are bounded polls for a condition (a checkpoint written, a job queued), never sleeps
// whose length decides the outcome.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Output {
  int code = -1;
  std::string out;
};

// Runs a shell command line made only of paths and ids this test created; captures stdout.
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

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// "" when a cluster answers, else why not.
std::string find_cluster() {
  if (!std::getenv("SLURM_CONF")) {
    const char* dir = std::getenv("SWEEP_SLURM_DIR");
    std::string conf = std::string(dir ? dir : "/tmp/llava-sweep-slurm") + "/slurm.conf";
    if (!fs::exists(conf)) {
      return "no Slurm cluster: " + conf +
             " is missing (start one with `scripts/slurm-cluster.sh start`, or set SLURM_CONF)";
    }
    ::setenv("SLURM_CONF", conf.c_str(), 1);
  }
  Output state = run("sinfo -h -o %t 2>&1");
  std::string s = trimmed(state.out);
  if (state.code != 0 || s.empty() || s.rfind("down", 0) == 0 || s.rfind("drain", 0) == 0) {
    return std::string("no Slurm cluster answers at ") + std::getenv("SLURM_CONF") +
           ": sinfo: " + s + " (start one with `scripts/slurm-cluster.sh start`)";
  }
  return "";
}

bool require_slurm() {
  const char* v = std::getenv("SWEEP_REQUIRE_SLURM");
  return v && std::string(v) == "1";
}

// Polls `ready` every 200 ms; false when `limit_s` passed first (the caller fails with what it
// waited for).
bool wait_for(const std::function<bool()>& ready, double limit_s = 300) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return true;
}

class SlurmEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    why_not_ = find_cluster();
    if (!why_not_.empty()) return;
    // One tiny model for every test of the suite, made once.
    model_root_ =
        fs::path(::testing::TempDir()) / ("sweep-slurm-model-" + std::to_string(::getpid()));
    fs::remove_all(model_root_);
    fs::create_directories(model_root_ / "model");
    std::ofstream corpus(model_root_ / "corpus.txt");
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
    std::string model = (model_root_ / "model").string();
    model_ok_ =
        run(std::string(SWEEP_WORKER_BIN) + " init-model --preset tiny --vocab-size 400 --out " +
            model + " >/dev/null 2>&1")
                .code == 0 &&
        run(std::string(SWEEP_TOKENIZER_BIN) + " " + (model_root_ / "corpus.txt").string() + " " +
            model + "/tokenizer.model 400 >/dev/null 2>&1")
                .code == 0;
  }
  static void TearDownTestSuite() {
    if (!model_root_.empty()) fs::remove_all(model_root_);
  }

  void SetUp() override {
    if (!why_not_.empty()) {
      if (require_slurm()) FAIL() << why_not_ << "; SWEEP_REQUIRE_SLURM=1 makes this a failure";
      GTEST_SKIP() << why_not_;
    }
    ASSERT_TRUE(model_ok_) << "could not make the tiny model with " << SWEEP_WORKER_BIN;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::path(::testing::TempDir()) /
            ("sweep-slurm-" + std::string(info->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    env_ = "cd " + root_.string() + " && SWEEP_CACHE=" + (root_ / "cache").string() + " ";
  }
  void TearDown() override {
    if (orchestrator_ > 0) {
      ::kill(orchestrator_, SIGKILL);
      ::waitpid(orchestrator_, nullptr, 0);
    }
    // Nothing of this test may stay queued on the shared cluster.
    for (const std::string& id : executor_ids()) run("scancel " + id + " 2>/dev/null");
    if (!HasFailure() && !root_.empty()) fs::remove_all(root_);
  }

  // `grid` and `train` complete the tiny sweep; `resources` goes inside resources: {...}.
  void write_spec(const std::string& grid, const std::string& train, const std::string& resources,
                  int retries = 0) {
    std::ofstream spec(root_ / "tiny.yaml");
    spec << "name: tiny\n"
            "base_model: "
         << (model_root_ / "model").string()
         << "\n"
            "data:\n"
            "  train: builtin:shapes/vqa_train.json\n"
            "  val: builtin:shapes/vqa_val.json\n"
            "  image_folder: builtin:shapes/images\n"
            "train: {"
         << train
         << ", eval_samples: 4, batch_size: 2, max_new_tokens: 2}\n"
            "grid:\n"
         << grid
         << "objective: {metric: val_loss, mode: min}\n"
            "resources: {executor: slurm, threads_per_job: 1, "
         << resources << "}\n"
         << "retries: " << retries << "\n";
  }

  json query(const std::string& sql) {
    Output r = run(env_ + SWEEP_BIN + " query \"" + sql + "\" --format json 2>&1");
    if (r.code != 0) return json::array();  // no database yet
    json rows = json::parse(r.out, nullptr, false);
    return rows.is_discarded() ? json::array() : rows;
  }

  std::set<std::string> executor_ids() {
    std::set<std::string> ids;
    if (root_.empty() || !fs::exists(root_ / "runs")) return ids;
    for (const json& row : query("SELECT executor_id FROM attempts WHERE executor_id IS NOT NULL"))
      ids.insert(row["executor_id"].get<std::string>());
    return ids;
  }

  // `sweep run tiny.yaml` in the background; its output goes to run.log.
  void start_orchestrator(const std::string& log = "run.log") {
    std::string cmd =
        env_ + "exec " + SWEEP_BIN + " run tiny.yaml >" + (root_ / log).string() + " 2>&1";
    orchestrator_ = ::fork();
    if (orchestrator_ == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  int wait_orchestrator() {
    int status = 0;
    ::waitpid(orchestrator_, &status, 0);
    orchestrator_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string log(const std::string& name = "run.log") {
    std::ifstream in(root_ / name);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  // The only job's run directory.
  fs::path run_dir() {
    json rows = query("SELECT run_dir FROM jobs");
    return rows.empty() ? fs::path() : fs::path(rows[0]["run_dir"].get<std::string>());
  }
  // The step of the newest checkpoint, 0 when none.
  static int latest_checkpoint_step(const fs::path& dir) {
    std::ifstream in(dir / "checkpoints" / "latest");
    std::string name;
    if (!(in >> name) || name.rfind("step-", 0) != 0) return 0;
    return std::stoi(name.substr(5));
  }
  // The first step of attempt `attempt` its `started` event says it resumed from (-1: none).
  static int64_t resumed_from(const fs::path& dir, int attempt) {
    std::ifstream in(dir / "events.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      json e = json::parse(line, nullptr, false);
      if (e.is_discarded() || e.value("type", "") != "started" || e.value("attempt", 0) != attempt)
        continue;
      return e.contains("resumed_from_step") && e["resumed_from_step"].is_number()
                 ? e["resumed_from_step"].get<int64_t>()
                 : -1;
    }
    return -1;
  }

  static std::string why_not_;
  static fs::path model_root_;
  static bool model_ok_;
  fs::path root_;
  std::string env_;
  pid_t orchestrator_ = 0;
};

std::string SlurmEndToEnd::why_not_;
fs::path SlurmEndToEnd::model_root_;
bool SlurmEndToEnd::model_ok_ = false;

// Four jobs, two Slurm jobs at a time on the 2-CPU node, to completion; each attempt records its
// Slurm job id and keeps its batch script and logs in its run directory.
TEST_F(SlurmEndToEnd, FourJobSweepRunsToCompletion) {
  write_spec(
      "  lora_r: [2, 4]\n  lora_alpha: {times: lora_r, values: [2]}\n"
      "  learning_rate: [1.0e-3, 2.0e-3]\n",
      "max_steps: 4, eval_every: 2", "max_submitted: 2, time_limit: \"5:00\"");
  Output ran = run(env_ + SWEEP_BIN + " run tiny.yaml 2>&1");
  ASSERT_EQ(ran.code, 0) << ran.out;
  json jobs = query(
      "SELECT j.state, j.run_dir, COUNT(a.attempt) AS attempts, MAX(a.executor_id) AS slurm_id "
      "FROM jobs j JOIN attempts a ON a.job_id = j.id GROUP BY j.id");
  ASSERT_EQ(jobs.size(), 4u) << jobs.dump();
  std::set<std::string> ids;
  for (const json& j : jobs) {
    EXPECT_EQ(j["state"], "succeeded") << jobs.dump();
    EXPECT_EQ(j["attempts"].get<int>(), 1) << jobs.dump();
    ASSERT_TRUE(j["slurm_id"].is_string()) << jobs.dump();
    ids.insert(j["slurm_id"].get<std::string>());
    fs::path dir = j["run_dir"].get<std::string>();
    EXPECT_TRUE(fs::exists(dir / "worker-1.sh")) << dir;
    EXPECT_TRUE(fs::exists(dir / "worker-1.out")) << dir;
    EXPECT_TRUE(fs::exists(dir / "worker-1.err")) << dir;
  }
  EXPECT_EQ(ids.size(), 4u);
  json curves =
      query("SELECT job_id, COUNT(*) AS n FROM metrics WHERE name = 'train_loss' GROUP BY job_id");
  ASSERT_EQ(curves.size(), 4u);
  for (const json& c : curves) EXPECT_EQ(c["n"].get<int>(), 4);
  Output listed = run(env_ + SWEEP_BIN + " jobs tiny 2>&1");
  EXPECT_NE(listed.out.find("executor_id"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find(*ids.begin()), std::string::npos) << listed.out;
}

// scancel from outside while the job trains: it ends `cancelled` (someone else's decision, not a
// failure to retry); `sweep retry --state cancelled` and a new run resume it from the checkpoint
// its worker wrote on Slurm's SIGTERM, and it finishes.
TEST_F(SlurmEndToEnd, JobCancelledFromOutsideIsShownCancelledThenRetriedAndResumed) {
  write_spec("  lora_r: [2]\n", "max_steps: 80, eval_every: 10", "max_submitted: 1", 2);
  start_orchestrator();
  fs::path dir;
  ASSERT_TRUE(wait_for([&] {
    dir = run_dir();
    return !dir.empty() && latest_checkpoint_step(dir) > 0;
  })) << "no checkpoint was written; log:\n"
      << log();
  std::set<std::string> ids = executor_ids();
  ASSERT_EQ(ids.size(), 1u);
  ASSERT_EQ(run("scancel " + *ids.begin()).code, 0);
  EXPECT_EQ(wait_orchestrator(), 0) << log();
  json job = query("SELECT state, error, attempt FROM jobs");
  ASSERT_EQ(job.size(), 1u);
  EXPECT_EQ(job[0]["state"], "cancelled") << job.dump();
  EXPECT_NE(job[0]["error"].get<std::string>().find("CANCELLED"), std::string::npos) << job.dump();
  int checkpoint = latest_checkpoint_step(dir);
  ASSERT_GT(checkpoint, 0);

  Output retried = run(env_ + SWEEP_BIN + " retry tiny --state cancelled 2>&1");
  ASSERT_EQ(retried.code, 0) << retried.out;
  Output ran = run(env_ + SWEEP_BIN + " run tiny.yaml 2>&1");
  ASSERT_EQ(ran.code, 0) << ran.out;
  job = query("SELECT state, attempt FROM jobs");
  EXPECT_EQ(job[0]["state"], "succeeded") << job.dump();
  EXPECT_EQ(job[0]["attempt"].get<int>(), 2) << job.dump();
  EXPECT_EQ(resumed_from(dir, 2), checkpoint);
  EXPECT_EQ(executor_ids().size(), 2u);
}

// A Slurm job past its time limit (1 minute, Slurm's least) is TIMEOUT: the attempt ends `lost`
// with Slurm's words and the job is submitted again, resuming from the checkpoint its worker
// wrote on the SIGTERM that Slurm sends at the limit. The retry is then stopped with Ctrl-C.
TEST_F(SlurmEndToEnd, JobPastItsTimeLimitIsRetriedFromItsCheckpoint) {
  write_spec("  lora_r: [2]\n", "max_steps: 1000000, eval_every: 20",
             "max_submitted: 1, time_limit: \"1\"", 1);
  start_orchestrator();
  ASSERT_TRUE(wait_for([&] { return executor_ids().size() == 2; }, 240))
      << "no second submission after the time limit; log:\n"
      << log();
  json first = query("SELECT state, error FROM attempts WHERE attempt = 1");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0]["state"], "lost") << first.dump();
  EXPECT_NE(first[0]["error"].get<std::string>().find("TIMEOUT"), std::string::npos)
      << first.dump();
  fs::path dir = run_dir();
  int checkpoint = latest_checkpoint_step(dir);
  EXPECT_GT(checkpoint, 0);
  ASSERT_TRUE(wait_for([&] { return resumed_from(dir, 2) >= 0; }, 120)) << log();
  EXPECT_EQ(resumed_from(dir, 2), checkpoint);
  // Ctrl-C: the worker checkpoints and stops; the job stays resumable.
  ::kill(orchestrator_, SIGINT);
  EXPECT_EQ(wait_orchestrator(), 130) << log();
  json job = query("SELECT state FROM jobs");
  EXPECT_EQ(job[0]["state"], "pending") << job.dump();
}

// kill -9 of the orchestrator while one Slurm job runs and others wait in the queue: the jobs go
// on; a rerun re-attaches them by their recorded ids and finishes the sweep with one attempt and
// one submission per job and every result recorded.
TEST_F(SlurmEndToEnd, RerunAfterKillNineReattachesWithoutDuplicates) {
  write_spec(
      "  lora_r: [2, 4]\n  lora_alpha: {times: lora_r, values: [2]}\n"
      "  learning_rate: [1.0e-3, 2.0e-3]\n",
      "max_steps: 30, eval_every: 10", "max_submitted: 3, cpus_per_job: 2", 0);
  start_orchestrator("first.log");
  ASSERT_TRUE(wait_for([&] {
    std::set<std::string> ids = executor_ids();
    if (ids.size() != 3) return false;
    std::set<std::string> states;
    for (const std::string& id : ids) states.insert(trimmed(run("squeue -h -o %T -j " + id).out));
    return states.count("RUNNING") && states.count("PENDING");
  })) << "never had jobs running and queued at once; log:\n"
      << log("first.log");
  ::kill(orchestrator_, SIGKILL);
  ::waitpid(orchestrator_, nullptr, 0);
  orchestrator_ = 0;
  std::set<std::string> before = executor_ids();

  Output ran = run(env_ + SWEEP_BIN + " run tiny.yaml 2>&1");
  ASSERT_EQ(ran.code, 0) << ran.out;
  EXPECT_NE(ran.out.find("re-attached"), std::string::npos) << ran.out;
  json jobs = query(
      "SELECT j.state, COUNT(a.attempt) AS attempts FROM jobs j JOIN attempts a ON a.job_id = "
      "j.id GROUP BY j.id");
  ASSERT_EQ(jobs.size(), 4u) << jobs.dump();
  for (const json& j : jobs) {
    EXPECT_EQ(j["state"], "succeeded") << jobs.dump();
    EXPECT_EQ(j["attempts"].get<int>(), 1) << jobs.dump();
  }
  std::set<std::string> after = executor_ids();
  EXPECT_EQ(after.size(), 4u);
  for (const std::string& id : before) EXPECT_TRUE(after.count(id)) << id;
  json curves =
      query("SELECT job_id, COUNT(*) AS n FROM metrics WHERE name = 'train_loss' GROUP BY job_id");
  ASSERT_EQ(curves.size(), 4u);
  for (const json& c : curves) EXPECT_EQ(c["n"].get<int>(), 30) << curves.dump();
}

}  // namespace
