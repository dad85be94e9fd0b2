// The evaluator on the tiny world: its loss is the training loss, sample by sample, and a limited
// evaluation scores the eval_subset of the set.
#include "worker/train/evaluator.h"

#include <algorithm>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/image.h"
#include "tests/train/train_world.h"
#include "worker/model/checkpoint.h"
#include "worker/train/collate.h"
#include "worker/train/eval_subset.h"

namespace sweep::train {
namespace {
using testing::world;

EvalOptions options(int batch_size, int image_size) {
  EvalOptions eo;
  eo.image_folder = world().images;
  eo.image_size = image_size;
  eo.max_length = 256;
  eo.batch_size = batch_size;
  eo.generate = false;
  return eo;
}

model::LlavaForConditionalGeneration tiny_model() {
  return model::load_llava(world().model_dir, torch::kFloat32, torch::kCPU);
}

TEST(Evaluator, SampleLossIsTheTrainingLossOfThatSampleAlone) {
  const std::vector<data::Sample> samples = data::load_llava_json(world().vqa_val);
  const data::Tokenizer tok = data::Tokenizer::load(world().model_dir);
  model::LlavaForConditionalGeneration m = tiny_model();
  const int S = m->config().image_size();
  std::vector<SampleScore> scores;
  Evaluator(samples, tok, options(/*batch_size=*/1, S)).run(m, &scores);
  ASSERT_EQ(scores.size(), samples.size());

  torch::NoGradGuard no_grad;
  m->eval();
  size_t supervised_samples = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const data::Sample& s = samples[i];
    data::LoadedSample one{i, s.id, data::tokenize_sample(s, tok, !s.image.empty(), 256), {}};
    if (!s.image.empty()) {
      one.pixels = data::clip_preprocess(data::decode_image(world().images + "/" + s.image), S,
                                         /*pad_to_square=*/true);
    }
    model::SplicedBatch b = m->splice(collate({one}, S, torch::kCPU), 256);
    const int64_t count = model::supervised_positions(b.labels).count;
    const double train_loss = m->loss(b).item<double>();  // the training step's loss
    EXPECT_EQ(scores[i].id, s.id);
    EXPECT_EQ(scores[i].tokens, count) << s.id;
    if (count > 0) ++supervised_samples;
    EXPECT_NEAR(scores[i].loss, train_loss, 1e-6 * std::max(1.0, train_loss)) << s.id;
    EXPECT_LE(scores[i].correct, scores[i].tokens) << s.id;
  }
  EXPECT_GT(supervised_samples, 0u);
}

TEST(Evaluator, BatchingDoesNotChangeASampleScore) {
  const std::vector<data::Sample> samples = data::load_llava_json(world().vqa_val);
  const data::Tokenizer tok = data::Tokenizer::load(world().model_dir);
  model::LlavaForConditionalGeneration m = tiny_model();
  std::vector<SampleScore> alone, batched;
  const int S = m->config().image_size();
  const EvalResult r1 = Evaluator(samples, tok, options(1, S)).run(m, &alone);
  const EvalResult r4 = Evaluator(samples, tok, options(4, S)).run(m, &batched);
  ASSERT_EQ(alone.size(), batched.size());
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_EQ(alone[i].tokens, batched[i].tokens) << alone[i].id;
    EXPECT_EQ(alone[i].correct, batched[i].correct) << alone[i].id;
    EXPECT_NEAR(alone[i].loss, batched[i].loss, 1e-5) << alone[i].id;
  }
  EXPECT_EQ(r1.val_tokens, r4.val_tokens);
  EXPECT_NEAR(r1.val_loss, r4.val_loss, 1e-5);
  EXPECT_GT(r1.val_loss, 0.0);
}

TEST(Evaluator, LimitedEvaluationScoresTheSeededSubset) {
  const std::vector<data::Sample> samples = data::load_llava_json(world().vqa_val);
  ASSERT_GT(samples.size(), 3u);
  const data::Tokenizer tok = data::Tokenizer::load(world().model_dir);
  model::LlavaForConditionalGeneration m = tiny_model();
  EvalOptions eo = options(4, m->config().image_size());
  eo.max_samples = 3;
  eo.seed = 5;
  std::vector<SampleScore> scores;
  const EvalResult r = Evaluator(samples, tok, eo).run(m, &scores);
  EXPECT_EQ(r.val_samples, 3);
  const std::vector<size_t> picked = eval_subset(samples.size(), 3, 5);
  ASSERT_EQ(scores.size(), picked.size());
  for (size_t j = 0; j < picked.size(); ++j) EXPECT_EQ(scores[j].id, samples[picked[j]].id);
}

TEST(Evaluator, KeepsTheFirstGeneratedAnswersBesideTheirReferences) {
  const std::vector<data::Sample> samples = data::load_llava_json(world().vqa_val);
  ASSERT_GT(samples.size(), 2u);
  const data::Tokenizer tok = data::Tokenizer::load(world().model_dir);
  model::LlavaForConditionalGeneration m = tiny_model();
  EvalOptions eo = options(4, m->config().image_size());
  eo.generate = true;
  eo.max_new_tokens = 2;
  eo.keep_predictions = 2;
  std::vector<SampleScore> scores;
  const EvalResult r = Evaluator(samples, tok, eo).run(m, &scores);
  ASSERT_EQ(r.predictions.size(), 2u);
  for (size_t i = 0; i < r.predictions.size(); ++i) {
    EXPECT_EQ(r.predictions[i].id, scores[i].id);
    EXPECT_EQ(r.predictions[i].prediction, scores[i].prediction);
    EXPECT_EQ(r.predictions[i].answer, scores[i].answer);
    EXPECT_FALSE(r.predictions[i].answer.empty());
    EXPECT_EQ(r.predictions[i].prompt, samples[i].conversations.front().value);
  }
  eo.generate = false;  // nothing generated, nothing kept
  EXPECT_TRUE(Evaluator(samples, tok, eo).run(m).predictions.empty());
}

}  // namespace
}  // namespace sweep::train
