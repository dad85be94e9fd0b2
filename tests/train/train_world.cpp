#include "tests/train/train_world.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <torch/torch.h>

#include "data/shapes/shapes_dataset.h"
#include "data/tokenizer.h"
#include "worker/model/checkpoint.h"
#include "worker/model/llava.h"
#include "worker/train/builtin_model.h"
#include "worker/train/job_runner.h"

namespace sweep::train::testing {
namespace fs = std::filesystem;
namespace {

void write_first_samples(const std::string& from, const std::string& to, size_t n) {
  std::ifstream in(from);
  nlohmann::json all = nlohmann::json::parse(in);
  nlohmann::json head = nlohmann::json::array();
  for (size_t i = 0; i < n && i < all.size(); ++i) head.push_back(all[i]);
  std::ofstream(to) << head.dump(1);
}

TrainWorld make_world() {
  TrainWorld w;
  w.root = (fs::temp_directory_path() / ("sweep_train_world_" + std::to_string(getpid()))).string();
  fs::remove_all(w.root);
  fs::create_directories(w.root);
  w.shapes = w.root + "/shapes";
  data::ShapesOptions opt;
  opt.image_size = 64;
  opt.train_images = 24;
  opt.val_images = 6;
  opt.seed = 99;
  data::write_shapes_dataset(w.shapes, opt);
  data::ShapesPaths p = data::shapes_paths(w.shapes);
  w.images = p.images;
  w.vqa_train = p.vqa_train;
  w.vqa_val = p.vqa_val;
  w.captions = p.captions_train;
  w.train8 = w.root + "/train8.json";
  write_first_samples(p.vqa_train, w.train8, 8);

  w.model_dir = w.root + "/tiny-model";
  fs::create_directories(w.root + "/tok");
  train_tokenizer_in_helper(p.corpus, w.root + "/tok/tokenizer.model", 300);
  data::Tokenizer tok = data::Tokenizer::load(w.root + "/tok/tokenizer.model");
  model::LlavaForConditionalGeneration m(model::preset_config("tiny", tok.vocab_size()), 1);
  model::save_llava(m, w.model_dir);
  fs::copy_file(w.root + "/tok/tokenizer.model", w.model_dir + "/tokenizer.model");
  return w;
}

}  // namespace

const TrainWorld& world() {
  static const TrainWorld w = [] {
    TrainWorld made = make_world();
    static std::string root = made.root;
    std::atexit([] { fs::remove_all(root); });
    return made;
  }();
  return w;
}

nlohmann::json fast_params(nlohmann::json extra) {
  nlohmann::json p = {{"batch_size", 4},   {"max_steps", 12},     {"eval_every", 6},
                      {"eval_samples", 3}, {"max_new_tokens", 3}, {"model_max_length", 256},
                      {"lora_r", 8},       {"lora_alpha", 16},    {"learning_rate", 5e-3},
                      {"warmup_steps", 2}, {"lora_dropout", 0.1}, {"seed", 3},
                      {"save_top_k", 5}};
  for (auto& [k, v] : extra.items()) p[k] = v;
  return p;
}

JobFile make_job(const std::string& name, nlohmann::json params) {
  const TrainWorld& w = world();
  JobFile job;
  job.sweep = "test";
  job.job_id = name;
  job.run_dir = w.root + "/runs/" + name;
  job.base_model = w.model_dir;
  job.train_data = w.train8;
  job.val_data = w.vqa_val;
  job.image_folder = w.images;
  job.params = std::move(params);
  job.threads = 1;
  job.heartbeat_seconds = 0;
  return job;
}

int run_fresh(const JobFile& job) {
  fs::remove_all(job.run_dir);
  fs::create_directories(job.run_dir);
  job.write(job.run_dir + "/job.json");
  return run_job_file(job.run_dir + "/job.json");
}

void copy_as_interrupted(const JobFile& whole, JobFile& cut,
                         const std::string& dropped_checkpoint) {
  fs::remove_all(cut.run_dir);
  fs::copy(whole.run_dir, cut.run_dir, fs::copy_options::recursive);
  fs::remove_all(cut.run_dir + "/checkpoints/" + dropped_checkpoint);
  fs::remove(cut.run_dir + "/checkpoints/latest");
  cut.attempt = 2;
  cut.write(cut.run_dir + "/job.json");
}

std::vector<Event> read_events(const std::string& run_dir) {
  EventTail tail(run_dir + "/events.jsonl");
  return tail.poll();
}

std::vector<std::pair<int, double>> progress_losses(const std::vector<Event>& events, int attempt) {
  std::vector<std::pair<int, double>> out;
  for (const Event& e : events) {
    const auto* p = e.as<ProgressEvent>();
    if (!p) continue;
    if (attempt && e.attempt.value_or(0) != attempt) continue;
    out.emplace_back(static_cast<int>(p->step), p->metrics.at("train_loss"));
  }
  return out;
}

const Event* find_event(const std::vector<Event>& events, const std::string& type) {
  for (const Event& e : events)
    if (e.type() == type) return &e;
  return nullptr;
}

}  // namespace sweep::train::testing
