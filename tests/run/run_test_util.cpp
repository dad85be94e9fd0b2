#include "run_test_util.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace sweep::testing {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool wait_until(const std::function<bool()>& done, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

SweepWorld::SweepWorld(const std::string& name) {
  root_ =
      (fs::temp_directory_path() / ("sweep-run-test-" + name + "-" + std::to_string(::getpid())))
          .string();
  fs::remove_all(root_);
  fs::create_directories(root_ + "/images");
  fs::create_directories(root_ + "/model");
  // A model directory `sweep run` accepts before any worker starts (the fake worker reads none
  // of it): the golden test model's tensor names for the LoRA target check, and a SentencePiece
  // tokenizer trained on tokenizer_corpus.txt (`sweep-train-tokenizer CORPUS OUT 300`) for the
  // data check; config.json is the golden one with room for the chat template's length.
  for (const char* file : {"config.json", "tokenizer.model"})
    fs::copy_file(std::string(SWEEP_RUN_FIXTURES) + "/model/" + file, root_ + "/model/" + file);
  fs::copy_file(std::string(SWEEP_GOLDEN_MODEL) + "/model.safetensors",
                root_ + "/model/model.safetensors");
  std::ofstream(root_ + "/train.json")
      << R"([{"id": "a", "conversations": [{"from": "human", "value": "hello"}, {"from": "gpt", "value": "hi"}]}])";
  ::setenv("SWEEP_DB", db().c_str(), 1);
  ::setenv("SWEEP_RUNS", runs().c_str(), 1);
  ::setenv("SWEEP_CACHE", (root_ + "/cache").c_str(), 1);
  ::setenv("FAKE_WORKER_PLAN", (root_ + "/plan.json").c_str(), 1);
  write_plan(nlohmann::json::object());
}

SweepWorld::~SweepWorld() {
  std::error_code ec;
  fs::remove_all(root_, ec);
}

std::string SweepWorld::write_spec(const std::string& name, int jobs, int max_steps, int eval_every,
                                   const std::string& extra, int slots, int pack) {
  std::ostringstream seeds;
  for (int i = 0; i < jobs; ++i) seeds << (i ? ", " : "") << i;
  std::string path = root_ + "/" + name + ".yaml";
  std::ofstream(path) << "name: " << name << "\n"
                      << "base_model: " << root_ << "/model\n"
                      << "data:\n  train: " << root_ << "/train.json\n  val: " << root_
                      << "/train.json\n  image_folder: " << root_ << "/images\n"
                      << "train:\n  max_steps: " << max_steps << "\n  eval_every: " << eval_every
                      << "\n"
                      << "grid:\n  seed: [" << seeds.str() << "]\n"
                      << "objective: {metric: val_loss, mode: min}\n"
                      << "resources: {slots: " << slots << ", threads_per_job: 1"
                      << (pack > 1 ? ", pack: " + std::to_string(pack) : std::string()) << "}\n"
                      << "worker: {command: [" << FAKE_WORKER_EXE << "]}\n"
                      << extra;
  return path;
}

void SweepWorld::write_plan(const nlohmann::json& plan) {
  std::ofstream(root_ + "/plan.json") << plan.dump();
}

CmdResult SweepWorld::sweep(const std::vector<std::string>& args) {
  std::string base = root_ + "/cmd-" + std::to_string(++calls_);
  bp::child c(SWEEP_EXE, bp::args = args, bp::std_in<bp::null, bp::std_out> base + ".out",
              bp::std_err > base + ".err");
  c.wait();
  return CmdResult{c.exit_code(), read_file(base + ".out"), read_file(base + ".err")};
}

bp::child SweepWorld::sweep_async(const std::vector<std::string>& args) {
  std::string base = root_ + "/async-" + std::to_string(++calls_);
  return bp::child(SWEEP_EXE, bp::args = args, bp::std_in<bp::null, bp::std_out> base + ".out",
                   bp::std_err > base + ".err");
}

std::unique_ptr<Store> SweepWorld::store() {
  auto s = Store::open(db());
  if (!s.ok()) throw std::runtime_error(s.error().message);
  return std::move(*s);
}

}  // namespace sweep::testing
