// The LLaVA model: config parsing, architecture invariants (causality, RoPE, feature layer),
// splicing, generation and the checkpoint loader's layouts and error messages.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/model/test_model.h"
#include "worker/model/checkpoint.h"
#include "worker/model/tensor_roles.h"
#include "worker/model/tensor_store.h"

namespace sweep::model {
namespace {

using testing::logits_of;
using testing::micro_config;
using testing::sample_batch;
using testing::temp_dir;
namespace fs = std::filesystem;

TEST(LlavaConfig, MissingFieldsTakeHuggingFaceDefaults) {
  auto c =
      LlavaConfig::from_json(nlohmann::json::parse(R"({"text_config": {"model_type": "llama"}})"));
  EXPECT_EQ(c.vision.hidden_size, 1024);  // LlavaConfig's CLIP ViT-L/14-336 default
  EXPECT_EQ(c.vision.image_size, 336);
  EXPECT_EQ(c.vision.patch_size, 14);
  EXPECT_EQ(c.num_image_tokens(), 576);
  EXPECT_EQ(c.text.hidden_size, 4096);
  EXPECT_EQ(c.text.num_key_value_heads, 32);
  EXPECT_EQ(c.text.head_dim, 128);
  EXPECT_DOUBLE_EQ(c.text.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.image_token_index, 32000);
  EXPECT_EQ(c.vision_feature_layer, -2);
  EXPECT_EQ(c.projector_hidden_act, "gelu");
}

TEST(LlavaConfig, RoundTripsThroughJson) {
  auto c = preset_config("tiny", 300);
  auto back = LlavaConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_EQ(back.text.num_key_value_heads, 2);
  EXPECT_EQ(back.image_token_index, 300);
  EXPECT_EQ(back.num_image_tokens(), 64);
}

TEST(LlavaConfig, WrongTypeAndBadSizesAreNamed) {
  try {
    LlavaConfig::from_json(nlohmann::json::parse(R"({"text_config": {"hidden_size": "big"}})"));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("text_config.hidden_size has the wrong type"),
              std::string::npos)
        << e.what();
  }
  try {
    LlavaConfig::from_json(nlohmann::json::parse(
        R"({"text_config": {"num_attention_heads": 6, "num_key_value_heads": 4}})"));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of num_key_value_heads"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(preset_config("huge", 10), std::runtime_error);
}

// RmsNorm is one autograd node with a closed-form backward (llama.cpp): its value and its
// gradients for x and the weight must be those of HF LlamaRMSNorm's composite.
TEST(RmsNorm, ForwardAndBackwardMatchTheCompositeInDouble) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  RmsNorm norm(6, 1e-6);
  norm->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    norm->weight.uniform_(0.5, 1.5);
  }
  torch::Tensor x = torch::randn({2, 3, 6}, opts).requires_grad_(true);
  torch::Tensor w = torch::randn({2, 3, 6}, opts);
  torch::Tensor y = norm->forward(x);
  (y * w).sum().backward();
  torch::Tensor gx = x.grad().clone(), gw = norm->weight.grad().clone();
  x.mutable_grad().reset();
  norm->zero_grad();

  torch::Tensor ref = norm->weight * (x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6));
  (ref * w).sum().backward();
  EXPECT_TRUE(torch::allclose(y, ref, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(gx, x.grad(), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(gw, norm->weight.grad(), 1e-12, 1e-12));
}

TEST(LlavaModel, ParameterNamesAreTheLlavaHfNames) {
  LlavaForConditionalGeneration m(micro_config());
  auto params = m->named_parameters();
  for (const char* name :
       {"vision_tower.vision_model.embeddings.class_embedding",
        "vision_tower.vision_model.embeddings.patch_embedding.weight",
        "vision_tower.vision_model.embeddings.position_embedding.weight",
        "vision_tower.vision_model.pre_layrnorm.weight",
        "vision_tower.vision_model.encoder.layers.1.self_attn.out_proj.bias",
        "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight",
        "vision_tower.vision_model.post_layernorm.bias", "multi_modal_projector.linear_1.weight",
        "multi_modal_projector.linear_2.bias", "language_model.model.embed_tokens.weight",
        "language_model.model.layers.1.self_attn.k_proj.weight",
        "language_model.model.layers.0.mlp.gate_proj.weight",
        "language_model.model.layers.0.input_layernorm.weight",
        "language_model.model.layers.0.post_attention_layernorm.weight",
        "language_model.model.norm.weight", "language_model.lm_head.weight"})
    EXPECT_NE(params.find(name), nullptr) << name;
  EXPECT_EQ(params["language_model.model.layers.0.self_attn.k_proj.weight"].sizes(),
            torch::IntArrayRef({16, 32}));  // 2 kv heads x 8
  EXPECT_EQ(params["vision_tower.vision_model.embeddings.position_embedding.weight"].size(0), 5);
}

TEST(LlavaModel, LogitsAtOrBeforeTDoNotDependOnLaterTokens) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  auto in = sample_batch(c);
  auto a = logits_of(m, in);
  in.input_ids[0][5] = 30;  // the image's 4 tokens sit at 2..5, so this token lands at 8
  auto b = logits_of(m, in);
  int64_t changed = 8;
  EXPECT_TRUE(torch::equal(a[0].slice(0, 0, changed), b[0].slice(0, 0, changed)));
  EXPECT_FALSE(torch::allclose(a[0][changed], b[0][changed]));
  EXPECT_TRUE(torch::equal(a[1], b[1]));
}

TEST(LlavaModel, RopeScoresDependOnlyOnRelativePosition) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  auto attn = m->language_model->model->layers[0]->as<LlamaDecoderLayer>()->self_attn;
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 6, c.text.hidden_size});
  auto pos = torch::arange(6, torch::kInt64).view({1, 6});
  auto [cos0, sin0] = rope_cos_sin(pos, c.text.head_dim, c.text.rope_theta);
  auto [cos1, sin1] = rope_cos_sin(pos + 37, c.text.head_dim, c.text.rope_theta);
  auto s0 = attn->scores(x, cos0, sin0);
  auto s1 = attn->scores(x, cos1, sin1);
  EXPECT_TRUE(torch::allclose(s0, s1, /*rtol=*/1e-4, /*atol=*/1e-5));
  auto [cos2, sin2] = rope_cos_sin(pos * 2, c.text.head_dim, c.text.rope_theta);
  EXPECT_FALSE(torch::allclose(s0, attn->scores(x, cos2, sin2), 1e-4, 1e-5));
}

TEST(LlavaModel, ImageFeaturesComeFromSecondToLastClipLayer) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  auto pixels = torch::randn({2, 3, 16, 16});
  torch::NoGradGuard no_grad;
  auto before = m->image_features(pixels);
  EXPECT_EQ(before.sizes(), torch::IntArrayRef({2, 4, c.text.hidden_size}));  // CLS dropped
  auto last = m->vision_tower->vision_model->encoder->layers[1]->as<ClipEncoderLayer>();
  last->mlp->fc1->weight.mul_(3.0);
  last->self_attn->q_proj->weight.mul_(3.0);
  EXPECT_TRUE(torch::equal(before, m->image_features(pixels)));
  auto first = m->vision_tower->vision_model->encoder->layers[0]->as<ClipEncoderLayer>();
  first->mlp->fc1->weight.mul_(3.0);  // (adding a constant would cancel: LN output sums to 0)
  EXPECT_FALSE(torch::allclose(before, m->image_features(pixels)));
}

TEST(LlavaModel, SpliceReplacesPlaceholderAndPadsRight) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  auto in = sample_batch(c);
  torch::NoGradGuard no_grad;
  auto b = m->splice(in, 64);
  ASSERT_EQ(b.inputs_embeds.sizes(), torch::IntArrayRef({2, 10, 32}));  // 6 text + 4 image
  auto feats = m->image_features(in.pixel_values.slice(0, 0, 1));
  EXPECT_TRUE(torch::equal(b.inputs_embeds[0].slice(0, 2, 6), feats[0]));
  auto embed = m->language_model->model->embed_tokens->weight;
  EXPECT_TRUE(torch::equal(b.inputs_embeds[0][6], embed[7]));
  EXPECT_EQ(b.labels[0].slice(0, 0, 7).ne(kIgnoreIndex).sum().item<int64_t>(), 0);
  EXPECT_EQ(b.labels[0][7].item<int64_t>(), 8);
  EXPECT_EQ(b.attention_mask[1].sum().item<int64_t>(), 4);
  EXPECT_EQ(b.labels[1][3].item<int64_t>(), 13);
  EXPECT_EQ(b.labels[1][4].item<int64_t>(), kIgnoreIndex);
  EXPECT_EQ(b.position_ids[0][9].item<int64_t>(), 9);
  EXPECT_EQ(b.position_ids[1][5].item<int64_t>(), 0);
  EXPECT_EQ(m->splice(in, 5).inputs_embeds.size(1), 5);  // truncated to max_length
}

TEST(LlavaModel, SpliceRejectsPlaceholderWithoutImage) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  auto in = sample_batch(c);
  in.has_image[0] = false;
  try {
    m->splice(in, 64);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "splice: sample 0 has an image placeholder but no image");
  }
}

TEST(LlavaModel, PaddingDoesNotChangeRealTokenLogits) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  auto in = sample_batch(c);
  auto both = logits_of(m, in);
  MultimodalInputs alone;
  alone.input_ids = {in.input_ids[1]};
  alone.labels = {in.labels[1]};
  alone.has_image = {false};
  auto single = logits_of(m, alone);
  EXPECT_TRUE(torch::allclose(both[1].slice(0, 0, 4), single[0], 1e-5, 1e-5));
}

TEST(LlavaModel, GreedyGenerationWithCacheMatchesFullForward) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c, /*seed=*/3);
  auto pixels = torch::randn({3, 16, 16});
  std::vector<int64_t> prompt = {1, 4, kImageTokenIndex, 6, 7};
  auto fast = m->generate(prompt, pixels, 6, /*eos_id=*/-1);
  ASSERT_EQ(fast.size(), 6u);
  std::vector<int64_t> ids = prompt, slow;
  for (int i = 0; i < 6; ++i) {
    MultimodalInputs in;
    in.input_ids = {ids};
    in.labels = {std::vector<int64_t>(ids.size(), kIgnoreIndex)};
    in.pixel_values = pixels.unsqueeze(0);
    in.has_image = {true};
    auto logits = logits_of(m, in);
    int64_t next = logits[0][logits.size(1) - 1].argmax().item<int64_t>();
    slow.push_back(next);
    ids.push_back(next);
  }
  EXPECT_EQ(fast, slow);
  auto stopped = m->generate(prompt, pixels, 6, /*eos_id=*/fast[2]);
  EXPECT_EQ(stopped, std::vector<int64_t>(fast.begin(), fast.begin() + 2));
}

// Prompts of different lengths, with and without an image, decoded together: each answer equals
// the sample's own generate(), in double precision (where batching changes no rounding that an
// argmax could see), and eos ends one sample without ending the others.
TEST(LlavaModel, BatchedGenerationMatchesOneSampleAtATime) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c, /*seed=*/3);
  m->to(torch::kFloat64);
  auto pixels = torch::randn({2, 3, 16, 16}, torch::kFloat64);
  MultimodalInputs in;
  in.input_ids = {{1, 4, kImageTokenIndex, 6, 7}, {1, 9}, {1, kImageTokenIndex, 3, 5, 8, 2, 11}};
  for (const auto& ids : in.input_ids)
    in.labels.push_back(std::vector<int64_t>(ids.size(), kIgnoreIndex));
  in.has_image = {true, false, true};
  in.pixel_values =
      torch::stack({pixels[0], torch::zeros({3, 16, 16}, torch::kFloat64), pixels[1]});
  const torch::Tensor no_image;
  std::vector<std::vector<int64_t>> alone = {m->generate(in.input_ids[0], pixels[0], 6, -1),
                                             m->generate(in.input_ids[1], no_image, 6, -1),
                                             m->generate(in.input_ids[2], pixels[1], 6, -1)};
  EXPECT_EQ(m->generate_batch(in, 6, /*eos_id=*/-1), alone);

  // eos = sample 1's third token: sample 1 stops after two, the others run on (or stop at the
  // same token, as generate() does).
  const int64_t eos = alone[1][2];
  auto cut = [&](const std::vector<int64_t>& a) {
    return std::vector<int64_t>(a.begin(), std::find(a.begin(), a.end(), eos));
  };
  EXPECT_EQ(m->generate_batch(in, 6, eos),
            (std::vector<std::vector<int64_t>>{cut(alone[0]), cut(alone[1]), cut(alone[2])}));
  EXPECT_EQ(m->generate_batch(in, 0, -1), (std::vector<std::vector<int64_t>>(3)));
}

TEST(LlavaModel, LossIsShiftedMeanOverSupervisedTokens) {
  auto logits = torch::zeros({1, 3, 4});
  logits[0][0][2] = 10;  // predicts label at t=1
  auto labels = torch::tensor({kIgnoreIndex, int64_t(2), int64_t(3)}).view({1, 3});
  auto [sum, count] = causal_lm_loss_sum(logits, labels);
  EXPECT_EQ(count, 2);
  double l0 = -std::log(std::exp(10.0) / (std::exp(10.0) + 3));
  double l1 = std::log(4.0);
  EXPECT_NEAR(sum.item<double>(), l0 + l1, 1e-5);
  EXPECT_NEAR(causal_lm_loss(logits, labels).item<double>(), (l0 + l1) / 2, 1e-5);
}

TEST(LlavaModel, Bf16BaseStaysCloseToFp32) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  auto in = sample_batch(c);
  auto ref = logits_of(m, in);
  m->to_precision(torch::kBFloat16, torch::kCPU);
  EXPECT_EQ(m->language_model->lm_head->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(m->multi_modal_projector->linear_1->weight.scalar_type(), torch::kFloat32);
  auto low = logits_of(m, in).to(torch::kFloat32);
  EXPECT_LT((low - ref).abs().max().item<double>(), 0.05);
}

// Checkpoints --------------------------------------------------------------------------------

std::map<std::string, torch::Tensor> state_dict(LlavaForConditionalGeneration& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& item : m->named_parameters()) out[item.key()] = item.value().detach().clone();
  return out;
}

void write_config(const LlavaConfig& c, const std::string& dir) {
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << c.to_json().dump(2);
}

TEST(Checkpoint, SaveAndLoadGiveIdenticalLogits) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c, 7);
  std::string dir = temp_dir("saved");
  save_llava(m, dir);
  EXPECT_TRUE(fs::exists(dir + "/config.json"));
  auto back = load_llava(dir, torch::kFloat32, torch::kCPU);
  auto in = sample_batch(c);
  EXPECT_TRUE(torch::equal(logits_of(m, in), logits_of(back, in)));
  save_llava(back, dir);  // replacing an existing checkpoint works
  EXPECT_TRUE(
      torch::equal(logits_of(m, in), logits_of(load_llava(dir, torch::kFloat32, torch::kCPU), in)));
}

TEST(Checkpoint, NewTransformersLayoutLoadsToSameLogits) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c, 7);
  std::string dir = temp_dir("layout2");
  write_config(c, dir);
  std::vector<std::pair<std::string, torch::Tensor>> renamed;
  const std::string body = "language_model.model.";
  for (auto& [name, t] : state_dict(m)) {
    const TensorClass c = classify(name);
    std::string n = "model." + name;  // vision tower and projector
    if (c.role == TensorRole::kLmHead) n = "lm_head.weight";
    if (c.part == ModelPart::kLanguageModel && c.role != TensorRole::kLmHead)
      n = "model.language_model." + name.substr(body.size());
    renamed.emplace_back(n, t);
  }
  save_tensors(dir + "/model.safetensors", renamed);
  auto back = load_llava(dir, torch::kFloat32, torch::kCPU);
  auto in = sample_batch(c);
  EXPECT_TRUE(torch::equal(logits_of(m, in), logits_of(back, in)));
}

TEST(Checkpoint, ShardedCheckpointWithIndexLoads) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c, 9);
  std::string dir = temp_dir("sharded");
  write_config(c, dir);
  std::vector<std::pair<std::string, torch::Tensor>> a, b;
  nlohmann::json index = {{"metadata", {{"total_size", 0}}},
                          {"weight_map", nlohmann::json::object()}};
  for (auto& [name, t] : state_dict(m)) {
    bool first = classify(name).part != ModelPart::kLanguageModel;
    (first ? a : b).emplace_back(name, t.to(torch::kBFloat16));
    index["weight_map"][name] =
        first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  save_tensors(dir + "/model-00001-of-00002.safetensors", a);
  save_tensors(dir + "/model-00002-of-00002.safetensors", b);
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump();
  auto back = load_llava(dir, torch::kBFloat16, torch::kCPU);
  EXPECT_EQ(back->language_model->lm_head->weight.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(back->language_model->lm_head->weight,
                           m->language_model->lm_head->weight.to(torch::kBFloat16)));
  fs::remove(dir + "/model-00002-of-00002.safetensors");
  try {
    load_llava(dir, torch::kFloat32, torch::kCPU);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "lists shard 'model-00002-of-00002.safetensors' which is missing"),
              std::string::npos)
        << e.what();
  }
}

TEST(Checkpoint, OneErrorListsMissingUnexpectedAndMisshapedTensors) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  std::string dir = temp_dir("broken");
  write_config(c, dir);
  auto sd = state_dict(m);
  sd.erase("language_model.model.norm.weight");
  sd.erase("multi_modal_projector.linear_2.bias");
  sd["language_model.model.layers.0.mlp.up_proj.weight"] = torch::zeros({3, 3});
  sd["language_model.model.extra.weight"] = torch::zeros({2});
  save_tensors(dir + "/model.safetensors", {sd.begin(), sd.end()});
  try {
    load_llava(dir, torch::kFloat32, torch::kCPU);
    FAIL();
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("checkpoint " + dir + " does not match its config.json"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("missing tensors (2):"), std::string::npos) << msg;
    EXPECT_NE(msg.find("language_model.model.norm.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("multi_modal_projector.linear_2.bias"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected tensors (1):\n    language_model.model.extra.weight"),
              std::string::npos)
        << msg;
    EXPECT_NE(
        msg.find("language_model.model.layers.0.mlp.up_proj.weight: file [3, 3], model [64, 32]"),
        std::string::npos)
        << msg;
  }
}

TEST(Checkpoint, OriginalLlavaProjectorNamesMap) {
  EXPECT_EQ(canonical_tensor_name("model.mm_projector.0.weight"),
            "multi_modal_projector.linear_1.weight");
  EXPECT_EQ(canonical_tensor_name("model.mm_projector.2.bias"),
            "multi_modal_projector.linear_2.bias");
  EXPECT_EQ(canonical_tensor_name("model.layers.3.mlp.up_proj.weight"),
            "language_model.model.layers.3.mlp.up_proj.weight");
  EXPECT_EQ(canonical_tensor_name("lm_head.weight"), "language_model.lm_head.weight");
  EXPECT_EQ(canonical_tensor_name("model.vision_tower.vision_tower.vision_model.pre_layrnorm.bias"),
            "vision_tower.vision_model.pre_layrnorm.bias");
  EXPECT_EQ(canonical_tensor_name("vision_tower.vision_model.pre_layrnorm.bias"),
            "vision_tower.vision_model.pre_layrnorm.bias");
}

}  // namespace
}  // namespace sweep::model
