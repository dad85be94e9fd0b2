// builtin:tiny-llava: the demo's base model, made on first use (docs/demo.md). A SentencePiece
// tokenizer is trained on the shapes corpus, a tiny LLaVA (preset "tiny") is initialised for its
// vocabulary, and its language model and projector are trained on the shapes captions (the CLIP
// tower stays at its initialisation, see docs/demo.md), so it knows pictures and words but not
// the question-answering task the LoRA sweep then teaches.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

namespace sweep::train {

struct BaseModelRecipe {
  // Sized for under two minutes on 2 idle CPU cores (about 0.17 s per step of 8 samples): caption
  // loss 5.6 -> 0.31 after 600 steps, and 0.78 with the images shuffled, so the model reads them.
  int vocab_size = 600;
  int steps = 600;
  int batch_size = 8;
  double learning_rate = 3e-3;            // language model
  double projector_learning_rate = 1e-2;  // projector (and the vision tower when trained)
  // The CLIP tower stays at its random initialisation by default, frozen as LLaVA freezes its
  // pretrained one: trained from scratch on these captions it learns a near-constant output that
  // the language model then ignores (captions as likely with shuffled images), while the random
  // patch features carry colour, shape and place for the projector to map.
  bool train_vision_tower = false;
  int threads = 2;
  uint64_t seed = 7;
  std::string preset = "tiny";  // model::preset_config name
  int max_samples = 0;          // > 0: train on the first N captions only (tests)
};

struct BaseModelReport {
  double first_loss = 0, last_loss = 0;  // mean caption loss of the first / last 10 steps
  double seconds = 0;
};

// Makes the model in `out_dir` (config.json, model.safetensors, tokenizer.model) from a shapes
// dataset root. Progress lines go to `log` when given.
BaseModelReport make_tiny_llava(const std::string& shapes_root, const std::string& out_dir,
                                const BaseModelRecipe& recipe, std::ostream* log);

// Trains a tokenizer (data::train_tokenizer on the non-empty lines of `corpus_path`) in the
// LibTorch-free helper sweep-train-tokenizer: beside this executable, else where it was built.
// Throws std::runtime_error with the command when it fails.
void train_tokenizer_in_helper(const std::string& corpus_path, const std::string& out_model_path,
                               int vocab_size);

// "builtin:tiny-llava" -> its cache directory, made once across processes (data::make_once).
// Throws std::runtime_error listing the known names for another ref.
std::string make_builtin_model(const std::string& ref, std::ostream* log);

}  // namespace sweep::train
