#include "worker/train/builtin_model.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <vector>

#include <torch/torch.h>

#include "data/builtin.h"
#include "data/llava_json.h"
#include "data/loader.h"
#include "data/shapes/shapes_dataset.h"
#include "data/tokenizer.h"
#include "worker/model/checkpoint.h"
#include "worker/model/llava.h"
#include "worker/model/lora.h"
#include "worker/train/model_setup.h"
#include "worker/train/trainer.h"

namespace sweep::train {
namespace fs = std::filesystem;
namespace {

#ifndef SWEEP_TRAIN_TOKENIZER_BIN
#define SWEEP_TRAIN_TOKENIZER_BIN "sweep-train-tokenizer"
#endif

std::string tokenizer_helper() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::exists(self.parent_path() / "sweep-train-tokenizer"))
    return (self.parent_path() / "sweep-train-tokenizer").string();
  return SWEEP_TRAIN_TOKENIZER_BIN;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The language model and the projector always train; the vision tower when the recipe asks (it
// then learns at the projector's rate).
model::TrainableGroups trainable_groups(model::LlavaForConditionalGeneration& m, bool vision) {
  model::TrainableGroups groups = model::set_trainable(m, /*lora_mode=*/false,
                                                       /*train_projector=*/true);
  if (!vision) return groups;
  for (auto& p : m->vision_tower->parameters()) {
    p.set_requires_grad(true);
    groups.projector.push_back(p);
  }
  return groups;
}

}  // namespace

void train_tokenizer_in_helper(const std::string& corpus_path, const std::string& out_model_path,
                               int vocab_size) {
  const std::string cmd = shell_quote(tokenizer_helper()) + " " + shell_quote(corpus_path) + " " +
                          shell_quote(out_model_path) + " " + std::to_string(vocab_size);
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("tokenizer training failed: " + cmd);
}

BaseModelReport make_tiny_llava(const std::string& shapes_root, const std::string& out_dir,
                                const BaseModelRecipe& recipe, std::ostream* log) {
  const auto t0 = std::chrono::steady_clock::now();
  const data::ShapesPaths paths = data::shapes_paths(shapes_root);
  torch::set_num_threads(std::max(1, recipe.threads));
  torch::manual_seed(recipe.seed);

  const fs::path tok_dir = fs::path(out_dir + ".tokenizer");
  fs::create_directories(tok_dir);
  const std::string tok_path = (tok_dir / "tokenizer.model").string();
  train_tokenizer_in_helper(paths.corpus, tok_path, recipe.vocab_size);
  data::Tokenizer tok = data::Tokenizer::load(tok_path);

  model::LlavaConfig config = model::preset_config(recipe.preset, tok.vocab_size());
  model::LlavaForConditionalGeneration m(config, recipe.seed);
  model::TrainableGroups groups = trainable_groups(m, recipe.train_vision_tower);

  std::vector<data::Sample> captions = data::load_llava_json(paths.captions_train);
  if (recipe.max_samples > 0 && captions.size() > static_cast<size_t>(recipe.max_samples))
    captions.resize(recipe.max_samples);
  data::LoaderOptions lo;
  lo.image_folder = paths.images;
  lo.image_size = config.image_size();
  lo.batch_size = recipe.batch_size;
  lo.seed = recipe.seed;
  data::BatchLoader loader(std::move(captions), tok, lo);

  TrainParams p;
  p.mode = "full";
  p.max_steps = recipe.steps;
  p.batch_size = recipe.batch_size;
  p.learning_rate = recipe.learning_rate;
  p.mm_projector_lr = recipe.projector_learning_rate;
  p.lr_scheduler = "cosine";
  p.warmup_ratio = 0.05;
  p.max_grad_norm = 1.0;
  p.seed = static_cast<int>(recipe.seed);
  Trainer trainer(m, groups, p, loader);

  BaseModelReport report;
  double window = 0;
  for (int i = 0; i < recipe.steps; ++i) {
    StepResult r = trainer.step();
    window += r.loss;
    if (r.step % 10 == 0 || r.step == recipe.steps) {
      const int n = r.step % 10 == 0 ? 10 : r.step % 10;
      if (r.step <= 10) report.first_loss = window / n;
      report.last_loss = window / n;
      if (log)
        *log << "make tiny-llava: step " << r.step << "/" << recipe.steps << " caption loss "
             << std::fixed << std::setprecision(3) << window / n << "\n"
             << std::flush;
      window = 0;
    }
  }
  model::save_llava(m, out_dir);
  fs::copy_file(tok_path, fs::path(out_dir) / "tokenizer.model",
                fs::copy_options::overwrite_existing);
  write_missing_model_files(out_dir, m->config());
  fs::remove_all(tok_dir);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

std::string make_builtin_model(const std::string& ref, std::ostream* log) {
  const std::string dir = data::builtin_model_dir(ref);  // throws for unknown refs
  data::make_once(dir, [&](const std::string& tmp_dir) {
    const std::string shapes_root = data::resolve_builtin_data("builtin:shapes");
    BaseModelReport r = make_tiny_llava(shapes_root, tmp_dir, BaseModelRecipe{}, log);
    if (log)
      *log << "make tiny-llava: caption loss " << r.first_loss << " -> " << r.last_loss << " in "
           << r.seconds << " s\n";
  });
  return dir;
}

}  // namespace sweep::train
