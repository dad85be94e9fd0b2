// The builtin base-model recipe, scaled down: a tokenizer, a tiny model trained in full on a few
// captions, saved as a loadable model directory.
#include "worker/train/builtin_model.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "data/tokenizer.h"
#include "tests/train/train_world.h"
#include "worker/model/checkpoint.h"

namespace sweep::train {
namespace {
namespace fs = std::filesystem;

TEST(BuiltinModel, CaptionTrainingLowersTheLossAndSavesAModelDirectory) {
  const auto& w = testing::world();
  const std::string out = w.root + "/builtin-small";
  BaseModelRecipe r;
  r.vocab_size = 300;
  r.steps = 30;
  r.batch_size = 8;
  r.threads = 1;
  BaseModelReport report = make_tiny_llava(w.shapes, out, r, nullptr);
  EXPECT_LT(report.last_loss, 0.7 * report.first_loss)
      << report.first_loss << " -> " << report.last_loss;
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.model"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  EXPECT_FALSE(fs::exists(out + ".tokenizer"));
  data::Tokenizer tok = data::Tokenizer::load(out);
  auto m = model::load_llava(out, torch::kFloat32, torch::kCPU);
  EXPECT_EQ(m->config().text.vocab_size, tok.vocab_size());

  // The recipe keeps the CLIP tower at its initialisation and trains the projector.
  model::LlavaForConditionalGeneration init(m->config(), r.seed);
  EXPECT_TRUE(torch::equal(m->vision_tower->vision_model->embeddings->patch_embedding->weight,
                           init->vision_tower->vision_model->embeddings->patch_embedding->weight));
  EXPECT_FALSE(torch::equal(m->multi_modal_projector->linear_1->weight,
                            init->multi_modal_projector->linear_1->weight));
}

TEST(BuiltinModel, UnknownRefListsTheKnownModels) {
  try {
    make_builtin_model("builtin:huge-llava", nullptr);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tiny-llava"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sweep::train
