// The vision-feature cache on the tiny world: hits return the stored features bit for bit, every
// key change misses, a damaged entry is recomputed, and a job trained with the cache matches one
// trained without it.
#include "worker/train/feature_cache.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/image.h"
#include "data/llava_json.h"
#include "protocol/exit_codes.h"
#include "tests/train/train_world.h"
#include "worker/model/checkpoint.h"
#include "worker/model/lora.h"
#include "worker/train/collate.h"

namespace sweep::train {
namespace {
namespace fs = std::filesystem;
using testing::make_job;
using testing::progress_losses;
using testing::read_events;
using testing::run_fresh;
using testing::world;

model::LlavaForConditionalGeneration frozen_model() {
  auto m = model::load_llava(world().model_dir, torch::kFloat32, torch::kCPU);
  model::set_trainable(m, /*lora_mode=*/true, /*train_projector=*/true);
  return m;
}

// A fresh directory per test under the world's root.
std::string temp_dir(const std::string& name) {
  const std::string dir = world().root + "/feature-cache-test/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The first `n` train samples with images, copied into `folder` (so a test may touch them).
struct Batch {
  model::MultimodalInputs in;
  std::vector<std::string> paths;
};
Batch image_batch(model::LlavaForConditionalGeneration& m, const std::string& folder, size_t n) {
  Batch b;
  std::vector<data::LoadedSample> samples;
  const int S = m->config().image_size();
  for (const data::Sample& s : data::load_llava_json(world().train8)) {
    if (s.image.empty() || samples.size() == n) continue;
    const std::string path = folder + "/" + std::to_string(samples.size()) + ".png";
    if (!fs::exists(path)) fs::copy_file(world().images + "/" + s.image, path);
    data::LoadedSample ls;
    ls.index = samples.size();
    ls.tokens.input_ids = {1, data::kImageTokenIndex, 5};
    ls.tokens.labels = {data::kIgnoreIndex, data::kIgnoreIndex, 5};
    ls.tokens.has_image = true;
    ls.pixels = data::clip_preprocess(data::decode_image(path), S, /*pad_to_square=*/true);
    samples.push_back(ls);
    b.paths.push_back(path);
  }
  b.in = collate(samples, S, torch::kCPU);
  return b;
}

PreprocessKey preprocess_of(model::LlavaForConditionalGeneration& m) {
  return PreprocessKey{m->config().image_size(), /*pad_to_square=*/true};
}

TEST(VisionFeatureCache, SecondLookupReturnsTheStoredFeaturesBitEqual) {
  auto m = frozen_model();
  const std::string dir = temp_dir("hit");
  Batch b = image_batch(m, dir, 3);
  VisionFeatureCache first(dir + "/cache", FeatureStore::kDefaultMaxBytes, m, preprocess_of(m));
  first.fill(m, b.in, b.paths);
  EXPECT_EQ(first.stats().misses, 3);
  EXPECT_EQ(first.stats().hits, 0);
  torch::Tensor computed = b.in.image_hidden;  // (3, P, Dv)
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(computed, m->vision_hidden(b.in.pixel_values)));

  // Another job: a second cache over the same directory.
  VisionFeatureCache second(dir + "/cache", FeatureStore::kDefaultMaxBytes, m, preprocess_of(m));
  b.in.image_hidden = torch::Tensor();
  second.fill(m, b.in, b.paths);
  EXPECT_EQ(second.stats().hits, 3);
  EXPECT_EQ(second.stats().misses, 0);
  EXPECT_TRUE(torch::equal(b.in.image_hidden, computed));
  EXPECT_TRUE(torch::equal(second.hidden(m, b.paths[1], b.in.pixel_values[1]), computed[1]));
  EXPECT_EQ(second.stats().hits, 4);
}

TEST(VisionFeatureCache, SpliceOfCachedFeaturesEqualsSpliceOfPixels) {
  auto m = frozen_model();
  const std::string dir = temp_dir("splice");
  Batch b = image_batch(m, dir, 2);
  torch::NoGradGuard no_grad;
  model::SplicedBatch from_pixels = m->splice(b.in, 0);
  VisionFeatureCache cache(dir + "/cache", FeatureStore::kDefaultMaxBytes, m, preprocess_of(m));
  cache.fill(m, b.in, b.paths);  // misses, stores
  b.in.image_hidden = torch::Tensor();
  cache.fill(m, b.in, b.paths);  // hits
  EXPECT_EQ(cache.stats().hits, 2);
  model::SplicedBatch from_cache = m->splice(b.in, 0);
  EXPECT_TRUE(torch::equal(from_cache.inputs_embeds, from_pixels.inputs_embeds));
}

TEST(VisionFeatureCache, GenerateFromCachedFeaturesEqualsGenerateFromPixels) {
  auto m = frozen_model();
  const std::string dir = temp_dir("generate");
  Batch b = image_batch(m, dir, 1);
  VisionFeatureCache cache(dir + "/cache", FeatureStore::kDefaultMaxBytes, m, preprocess_of(m));
  torch::Tensor pixels = b.in.pixel_values[0];  // (3, S, S)
  cache.hidden(m, b.paths[0], pixels);
  torch::Tensor hidden = cache.hidden(m, b.paths[0], pixels);  // (P, Dv), a hit
  EXPECT_EQ(cache.stats().hits, 1);
  const std::vector<int64_t> prompt = {1, data::kImageTokenIndex, 5, 6, 7};
  EXPECT_EQ(m->generate(prompt, torch::Tensor(), 6, /*eos_id=*/-1, hidden),
            m->generate(prompt, pixels, 6, /*eos_id=*/-1));
}

TEST(VisionFeatureCache, FingerprintFollowsTheVisionTowerOnly) {
  auto a = frozen_model();
  auto b = frozen_model();
  EXPECT_EQ(vision_tower_fingerprint(a), vision_tower_fingerprint(b));
  torch::NoGradGuard no_grad;
  b->language_model->lm_head->weight[0][0].add_(1.0);
  EXPECT_EQ(vision_tower_fingerprint(a), vision_tower_fingerprint(b));
  b->vision_tower->vision_model->pre_layrnorm->weight[0].add_(1e-3);
  EXPECT_NE(vision_tower_fingerprint(a), vision_tower_fingerprint(b));
}

TEST(VisionFeatureCache, EachKeyChangeIsAMiss) {
  auto m = frozen_model();
  const std::string dir = temp_dir("keys");
  Batch b = image_batch(m, dir, 2);
  const std::string cache_dir = dir + "/cache";
  auto misses_of = [&](model::LlavaForConditionalGeneration& model, const PreprocessKey& pre) {
    VisionFeatureCache cache(cache_dir, FeatureStore::kDefaultMaxBytes, model, pre);
    b.in.image_hidden = torch::Tensor();
    cache.fill(model, b.in, b.paths);
    return cache.stats().misses;
  };
  EXPECT_EQ(misses_of(m, preprocess_of(m)), 2);
  EXPECT_EQ(misses_of(m, preprocess_of(m)), 0);
  // Preprocessing: aspect-ratio mode, image size.
  EXPECT_EQ(misses_of(m, PreprocessKey{m->config().image_size(), false}), 2);
  EXPECT_EQ(misses_of(m, PreprocessKey{m->config().image_size() + 1, true}), 2);
  // The vision tower's weights.
  auto changed = frozen_model();
  {
    torch::NoGradGuard no_grad;
    changed->vision_tower->vision_model->pre_layrnorm->bias[0].add_(1e-3);
  }
  EXPECT_EQ(misses_of(changed, preprocess_of(m)), 2);
  // The dtype the features are computed in (the fingerprint changes with it too).
  auto bf16 = frozen_model();
  bf16->to_precision(torch::kBFloat16, torch::kCPU);
  EXPECT_EQ(misses_of(bf16, preprocess_of(m)), 2);
  // The image file: a new mtime on one image, a new size on the other.
  EXPECT_EQ(misses_of(m, preprocess_of(m)), 0);
  fs::last_write_time(b.paths[0], fs::last_write_time(b.paths[0]) - std::chrono::hours(1));
  EXPECT_EQ(misses_of(m, preprocess_of(m)), 1);
  const auto mtime = fs::last_write_time(b.paths[1]);
  fs::resize_file(b.paths[1], fs::file_size(b.paths[1]) + 1);
  fs::last_write_time(b.paths[1], mtime);
  EXPECT_EQ(misses_of(m, preprocess_of(m)), 1);
  EXPECT_EQ(misses_of(m, preprocess_of(m)), 0);
}

TEST(VisionFeatureCache, TruncatedEntryIsRecomputedAndRewritten) {
  auto m = frozen_model();
  const std::string dir = temp_dir("truncated");
  Batch b = image_batch(m, dir, 2);
  VisionFeatureCache cache(dir + "/cache", FeatureStore::kDefaultMaxBytes, m, preprocess_of(m));
  cache.fill(m, b.in, b.paths);
  torch::Tensor computed = b.in.image_hidden;
  std::vector<std::pair<std::string, uintmax_t>> entries;
  for (const auto& e : fs::directory_iterator(dir + "/cache"))
    entries.emplace_back(e.path().string(), e.file_size());
  ASSERT_EQ(entries.size(), 2u);
  fs::resize_file(entries[0].first, entries[0].second / 2);
  fs::resize_file(entries[1].first, 0);
  b.in.image_hidden = torch::Tensor();
  cache.fill(m, b.in, b.paths);
  EXPECT_EQ(cache.stats().misses, 4);
  EXPECT_TRUE(torch::equal(b.in.image_hidden, computed));
  for (const auto& [path, size] : entries) EXPECT_EQ(fs::file_size(path), size) << path;
  b.in.image_hidden = torch::Tensor();
  cache.fill(m, b.in, b.paths);
  EXPECT_EQ(cache.stats().hits, 2);
}

TEST(VisionFeatureCache, OnlyForLoraWithAFrozenVisionTower) {
  auto m = frozen_model();
  const std::string dir = temp_dir("open") + "/cache";
  TrainParams p;
  p.mode = "lora";
  EXPECT_NE(open_feature_cache(dir, p, m, preprocess_of(m)), nullptr);
  EXPECT_EQ(open_feature_cache("", p, m, preprocess_of(m)), nullptr);
  p.lora_vision_tower = true;
  EXPECT_EQ(open_feature_cache(dir, p, m, preprocess_of(m)), nullptr);
  p.lora_vision_tower = false;
  p.mode = "full";
  EXPECT_EQ(open_feature_cache(dir, p, m, preprocess_of(m)), nullptr);
  p.mode = "lora";
  m->vision_tower->vision_model->pre_layrnorm->weight.set_requires_grad(true);
  EXPECT_EQ(open_feature_cache(dir, p, m, preprocess_of(m)), nullptr);
}

std::map<std::string, double> last_eval(const std::vector<Event>& events) {
  std::map<std::string, double> out;
  for (const Event& e : events)
    if (const auto* ev = e.as<EvalEvent>())
      for (const auto& [k, v] : ev->metrics) out[k] = v;
  return out;
}

// Largest |a - b| over the steps' losses.
double max_loss_difference(const std::vector<std::pair<int, double>>& a,
                           const std::vector<std::pair<int, double>>& b) {
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    d = std::max(d, std::abs(a[i].second - b[i].second));
  return d;
}

TEST(VisionFeatureCache, JobWithTheCacheMatchesAJobWithout) {
  const nlohmann::json params = testing::fast_params({});
  const std::string cache_dir = temp_dir("job") + "/feature-cache";
  JobFile plain = make_job("fc-plain", params);
  JobFile cold = make_job("fc-cold", params);
  JobFile warm = make_job("fc-warm", params);
  cold.feature_cache = warm.feature_cache = cache_dir;
  ASSERT_EQ(run_fresh(plain), kExitOk);
  ASSERT_EQ(run_fresh(cold), kExitOk);
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(cache_dir)) {
    if (e.path().extension() != ".vfeat") continue;  // the shared step-0 score lives here too
    entries.push_back(e.path().string());
    fs::last_write_time(e.path(), fs::last_write_time(e.path()) - std::chrono::hours(1));
  }
  ASSERT_FALSE(entries.empty());
  const auto an_hour_ago = fs::file_time_type::clock::now() - std::chrono::minutes(59);
  ASSERT_EQ(run_fresh(warm), kExitOk);

  // The warm job read every entry (a hit touches it) and computed none.
  size_t after = 0;
  for (const auto& e : fs::directory_iterator(cache_dir)) {
    if (e.path().extension() != ".vfeat") continue;
    ++after;
    EXPECT_GT(fs::last_write_time(e.path()), an_hour_ago) << e.path() << " was not read";
  }
  EXPECT_EQ(after, entries.size());

  auto base = progress_losses(read_events(plain.run_dir));
  auto with_cold = progress_losses(read_events(cold.run_dir));
  auto with_warm = progress_losses(read_events(warm.run_dir));
  ASSERT_EQ(base.size(), 12u);
  ASSERT_EQ(with_cold.size(), base.size());
  ASSERT_EQ(with_warm.size(), base.size());
  const double cold_d = max_loss_difference(base, with_cold);
  const double warm_d = max_loss_difference(base, with_warm);
  auto eval_base = last_eval(read_events(plain.run_dir));
  auto eval_warm = last_eval(read_events(warm.run_dir));
  std::cout << "max |train_loss difference|: cold cache " << cold_d << ", warm cache " << warm_d
            << "; final val_loss " << eval_base["val_loss"] << " vs " << eval_warm["val_loss"]
            << "\n";
  EXPECT_LE(cold_d, 1e-5);
  EXPECT_LE(warm_d, 1e-5);
  EXPECT_NEAR(eval_base["val_loss"], eval_warm["val_loss"], 1e-5);
  EXPECT_EQ(eval_base["val_token_acc"], eval_warm["val_token_acc"]);
  EXPECT_EQ(eval_base["val_exact_match"], eval_warm["val_exact_match"]);
}

// Step 0's score is the base model's, the same for every job of the sweep: the second job reads
// what the first stored instead of evaluating. (Proof that it is read: the stored value is
// replaced before the second job runs, and the second job reports the replacement.)
TEST(BaseModelScore, TheSecondJobOfASweepTakesStepZerosScoreFromTheFirst) {
  const std::string cache_dir = temp_dir("base-score") + "/feature-cache";
  JobFile first = make_job("bs-first", testing::fast_params({{"max_steps", 2}}));
  JobFile second =
      make_job("bs-second", testing::fast_params({{"max_steps", 2}, {"learning_rate", 3e-3}}));
  first.feature_cache = second.feature_cache = cache_dir;
  ASSERT_EQ(run_fresh(first), kExitOk);
  std::vector<fs::path> scores;
  for (const auto& e : fs::directory_iterator(cache_dir)) {
    if (e.path().filename().string().rfind("base-score-", 0) == 0) scores.push_back(e.path());
  }
  ASSERT_EQ(scores.size(), 1u);
  const EvalEvent* step0 = nullptr;
  auto first_events = read_events(first.run_dir);
  for (const auto& e : first_events)
    if (const auto* ev = e.as<EvalEvent>(); ev && ev->step == 0) step0 = ev;
  ASSERT_NE(step0, nullptr);
  std::ifstream in(scores[0]);
  nlohmann::json stored = nlohmann::json::parse(in);
  EXPECT_DOUBLE_EQ(stored["val_loss"].get<double>(), step0->metrics.at("val_loss"));

  // Another learning rate, the same seed (so the same evaluated subset): the same key.
  stored["val_loss"] = 123.0;
  std::ofstream(scores[0]) << stored.dump();
  ASSERT_EQ(run_fresh(second), kExitOk);
  for (const auto& e : read_events(second.run_dir)) {
    const auto* ev = e.as<EvalEvent>();
    if (!ev) continue;
    if (ev->step == 0) {
      EXPECT_DOUBLE_EQ(ev->metrics.at("val_loss"), 123.0);
    } else {
      EXPECT_LT(ev->metrics.at("val_loss"), 100.0);  // later evaluations are its own
    }
  }
}

}  // namespace
}  // namespace sweep::train
