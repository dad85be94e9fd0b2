// Training throughput of the real trainer (loader thread, collate, splice, forward, backward,
// AdamW) on the tiny and small presets in LoRA mode: samples/s, tokens/s, and the share of the
// step time spent waiting for data. The data is a generated shapes set in a temp directory.
// usage: train_bench [--steps N] [--batch B] [--threads T] [--presets tiny,small]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/llava_json.h"
#include "data/loader.h"
#include "data/shapes/shapes_dataset.h"
#include "data/tokenizer.h"
#include "worker/model/llava.h"
#include "worker/model/lora.h"
#include "worker/train/builtin_model.h"
#include "worker/train/trainer.h"

namespace {
namespace fs = std::filesystem;
using namespace sweep;

struct Options {
  int steps = 20, batch = 8, threads = 2;
  std::vector<std::string> presets = {"tiny", "small"};
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--steps")
      o.steps = std::atoi(v.c_str());
    else if (k == "--batch")
      o.batch = std::atoi(v.c_str());
    else if (k == "--threads")
      o.threads = std::atoi(v.c_str());
    else if (k == "--presets") {
      o.presets.clear();
      std::stringstream ss(v);
      for (std::string p; std::getline(ss, p, ',');) o.presets.push_back(p);
    }
  }
  return o;
}

void bench_preset(const std::string& preset, const Options& o, const data::ShapesPaths& shapes,
                  const data::Tokenizer& tok) {
  model::LlavaConfig config = model::preset_config(preset, tok.vocab_size());
  model::LlavaForConditionalGeneration m(config, 1);
  model::LoraSettings lora;
  model::apply_lora(m, lora, 1);
  model::TrainableGroups groups = model::set_trainable(m, true, true);

  data::LoaderOptions lo;
  lo.image_folder = shapes.images;
  lo.image_size = config.image_size();
  lo.batch_size = o.batch;
  lo.seed = 1;
  data::BatchLoader loader(data::load_llava_json(shapes.vqa_train), tok, lo);

  TrainParams p;
  p.max_steps = o.steps + 2;
  p.batch_size = o.batch;
  p.learning_rate = 1e-4;
  train::Trainer trainer(m, groups, p, loader);
  trainer.step();  // warm-up: first-touch allocations and the loader's first batches
  trainer.step();
  double seconds = 0, waited = 0;
  int64_t samples = 0, tokens = 0;
  for (int i = 0; i < o.steps; ++i) {
    train::StepResult r = trainer.step();
    seconds += r.seconds;
    waited += r.data_wait_seconds;
    samples += r.samples;
    tokens += r.tokens;
  }
  std::printf(
      "%-6s threads=%d batch=%d steps=%d  %7.1f ms/step  %7.1f samples/s  %9.0f tokens/s  "
      "data wait %4.1f%%\n",
      preset.c_str(), o.threads, o.batch, o.steps, 1e3 * seconds / o.steps, samples / seconds,
      tokens / seconds, 100.0 * waited / seconds);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  torch::set_num_threads(o.threads);
  const fs::path root = fs::temp_directory_path() / ("train_bench_" + std::to_string(getpid()));
  data::ShapesOptions so;
  so.train_images = 256;
  so.val_images = 8;
  data::write_shapes_dataset((root / "shapes").string(), so);
  const data::ShapesPaths shapes = data::shapes_paths((root / "shapes").string());
  train::train_tokenizer_in_helper(shapes.corpus, (root / "tokenizer.model").string(), 600);
  const data::Tokenizer tok = data::Tokenizer::load((root / "tokenizer.model").string());
  for (const auto& preset : o.presets) bench_preset(preset, o, shapes, tok);
  fs::remove_all(root);
  return 0;
}
