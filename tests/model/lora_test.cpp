// PEFT LoRA: initialisation, scaling, targets and patterns, trainable groups, gradients, adapter
// files and merging.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include "tests/model/test_model.h"
#include "worker/model/checkpoint.h"
#include "worker/model/dropout_mask.h"
#include "worker/model/lora.h"
#include "worker/model/safetensors.h"
#include "worker/model/tensor_roles.h"

namespace sweep::model {
namespace {

using testing::logits_of;
using testing::micro_config;
using testing::sample_batch;
using testing::temp_dir;
namespace fs = std::filesystem;

LoraSettings settings(int r = 4, double alpha = 8) {
  LoraSettings s;
  s.r = r;
  s.alpha = alpha;
  s.dropout = 0.0;
  s.target_modules = {"q_proj", "v_proj", "down_proj"};
  s.base_model_name_or_path = "tiny-llava";
  return s;
}

// Gives every lora_B random values so the adapter changes the output.
void randomize_b(LlavaForConditionalGeneration& m, double scale = 0.05) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(11);
  for (auto& item : m->named_parameters())
    if (classify(item.key()).role == TensorRole::kLoraB)
      item.value().copy_(torch::randn_like(item.value()) * scale);
}

TEST(LoraLinear, ScalingIsAlphaOverROrOverSqrtRWithRsLora) {
  LoraAdapterOptions o;
  o.r = 4;
  o.alpha = 8;
  EXPECT_DOUBLE_EQ(o.scaling(), 2.0);
  o.use_rslora = true;
  EXPECT_DOUBLE_EQ(o.scaling(), 4.0);
  for (bool rs : {false, true}) {
    LoraLinear lin(6, 3, /*bias=*/true);
    o.use_rslora = rs;
    lin->attach_lora(o, 5);
    torch::NoGradGuard no_grad;
    lin->lora_B->weight.normal_();
    auto x = torch::randn({2, 6});
    auto base = torch::nn::functional::linear(x, lin->weight, lin->bias);
    auto expect =
        base + torch::matmul(torch::matmul(x, lin->lora_A->weight.t()), lin->lora_B->weight.t()) *
                   o.scaling();
    EXPECT_TRUE(torch::allclose(lin->forward(x), expect, 1e-5, 1e-5)) << "rslora " << rs;
  }
}

TEST(LoraLinear, AIsKaimingUniformAndBIsZero) {
  LoraLinear lin(100, 10, false);
  LoraAdapterOptions o;
  o.r = 16;
  lin->attach_lora(o, 1);
  auto a = lin->lora_A->weight;
  EXPECT_EQ(a.sizes(), torch::IntArrayRef({16, 100}));
  EXPECT_LE(a.abs().max().item<double>(), 0.1);  // bound 1/sqrt(in_features)
  EXPECT_GT(a.abs().max().item<double>(), 0.09);
  EXPECT_EQ(lin->lora_B->weight.abs().sum().item<double>(), 0.0);
  LoraLinear again(100, 10, false);
  again->attach_lora(o, 1);
  EXPECT_TRUE(torch::equal(a, again->lora_A->weight));  // seeded
}

TEST(DropoutMask, KeepsOneMinusPScaledAndReplaysFromTheGeneratorState) {
  const double p = 0.3;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto state = gen.get_state();
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  torch::Tensor mask = dropout_mask({64, 33, 50}, p, gen, options);
  ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{64, 33, 50}));
  const float scale = float(1 / (1 - p));
  const auto kept = mask.eq(scale);
  EXPECT_TRUE(kept.logical_or(mask.eq(0)).all().item<bool>()) << "values other than 0 and 1/(1-p)";
  // 105,600 draws: the kept fraction's standard deviation is 0.0014.
  EXPECT_NEAR(kept.to(torch::kFloat64).mean().item<double>(), 1 - p, 0.01);
  // Neighbouring elements (the two halves of one 64-bit output) are not correlated.
  auto flat = kept.flatten().to(torch::kFloat64);
  auto even = flat.slice(0, 0, flat.numel(), 2), odd = flat.slice(0, 1, flat.numel(), 2);
  EXPECT_NEAR((even * odd).mean().item<double>(), (1 - p) * (1 - p), 0.01);

  // The next mask differs; restoring the state replays the first, on any number of threads.
  EXPECT_FALSE(torch::equal(dropout_mask({64, 33, 50}, p, gen, options), mask));
  const int threads = at::get_num_threads();
  for (int t : {1, 2}) {
    at::set_num_threads(t);
    gen.set_state(state);
    EXPECT_TRUE(torch::equal(dropout_mask({64, 33, 50}, p, gen, options), mask)) << t << " threads";
  }
  at::set_num_threads(threads);
  gen.set_state(state);
  auto dbl = dropout_mask({64, 33, 50}, p, gen, options.dtype(torch::kFloat64));
  EXPECT_TRUE(torch::equal(dbl.eq(0), mask.eq(0))) << "double masks keep the same elements";
  EXPECT_THROW(dropout_mask({4}, 0.0, gen, options), std::invalid_argument);
  EXPECT_THROW(dropout_mask({4}, 1.0, gen, options), std::invalid_argument);
}

// The adapter branch is one autograd node with its own backward (lora_linear.cpp). Its value and
// its gradients for x, A and B must be those of the composite it replaces, F::linear of the
// dropped-out input through A then B times scaling, with and without dropout, for a 3-d input
// and for a 2-d one, and with x not requiring grad (the first layer's input).
TEST(LoraLinear, FusedBranchMatchesTheCompositeForwardAndBackward) {
  namespace F = torch::nn::functional;
  for (const double p : {0.0, 0.4}) {
    for (const std::vector<int64_t>& shape : {std::vector<int64_t>{3, 5, 6}, {7, 6}}) {
      for (const bool x_grad : {true, false}) {
        LoraLinear lin(6, 4, /*bias=*/false);
        LoraAdapterOptions o;
        o.r = 3;
        o.alpha = 5;
        o.dropout = p;
        lin->attach_lora(o, 11);
        lin->to(torch::kFloat64);
        {
          torch::NoGradGuard no_grad;
          lin->lora_B->weight.normal_(0, 0.5);
        }
        lin->weight.set_requires_grad(false);
        auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
        lin->set_dropout_generator(gen);
        lin->train();
        const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
        torch::Tensor x = torch::randn(shape, opts).requires_grad_(x_grad);
        std::vector<int64_t> out_shape = shape;
        out_shape.back() = 4;
        torch::Tensor w = torch::randn(out_shape, opts);
        const auto state = gen.get_state();

        torch::Tensor y = lin->forward(x);
        (y * w).sum().backward();
        torch::Tensor gx = x_grad ? x.grad().clone() : torch::Tensor();
        torch::Tensor ga = lin->lora_A->weight.grad().clone();
        torch::Tensor gb = lin->lora_B->weight.grad().clone();
        if (x_grad) x.mutable_grad().reset();
        lin->zero_grad();

        gen.set_state(state);  // the same mask again
        torch::Tensor h = x;
        if (p > 0) h = h * dropout_mask(shape, p, gen, opts);
        torch::Tensor ref =
            F::linear(x, lin->weight) +
            F::linear(F::linear(h, lin->lora_A->weight), lin->lora_B->weight) * o.scaling();
        (ref * w).sum().backward();
        const std::string at = "p " + std::to_string(p) + ", " + std::to_string(shape.size()) +
                               "-d, x_grad " + std::to_string(x_grad);
        EXPECT_TRUE(torch::allclose(y, ref, 1e-12, 1e-12)) << at;
        EXPECT_TRUE(torch::allclose(ga, lin->lora_A->weight.grad(), 1e-12, 1e-12)) << at;
        EXPECT_TRUE(torch::allclose(gb, lin->lora_B->weight.grad(), 1e-12, 1e-12)) << at;
        if (x_grad) {
          EXPECT_TRUE(torch::allclose(gx, x.grad(), 1e-12, 1e-12)) << at;
        }
      }
    }
  }
}
TEST(Lora, ZeroBGivesLogitsIdenticalToBaseModel) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c, 2);
  auto in = sample_batch(c);
  auto base = logits_of(m, in);
  auto paths = apply_lora(m, settings(), 3);
  EXPECT_EQ(paths.size(), 6u);  // 2 layers x (q, v, down)
  EXPECT_TRUE(torch::equal(base, logits_of(m, in)));
}

TEST(Lora, TargetsOnlyLanguageModelUnlessVisionAsked) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  auto s = settings();
  s.target_modules = {"q_proj"};
  auto paths = lora_target_paths(m, s);
  EXPECT_EQ(paths, (std::vector<std::string>{"language_model.model.layers.0.self_attn.q_proj",
                                             "language_model.model.layers.1.self_attn.q_proj"}));
  s.include_vision_tower = true;
  EXPECT_EQ(lora_target_paths(m, s).size(), 4u);
  EXPECT_EQ(lora_target_paths(m, s)[0],
            "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj");
  s.include_vision_tower = false;
  s.target_modules = {"all-linear"};
  EXPECT_EQ(lora_target_paths(m, s).size(), 14u);  // 7 per layer, lm_head excluded
  s.target_modules = {"proj"};  // a suffix that is not a whole name matches nothing
  try {
    lora_target_paths(m, s);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "lora target_modules [proj]: 'proj' matches no Linear module of the model"),
              std::string::npos)
        << e.what();
  }
}

TEST(Lora, ATargetThatReachesOnlyTheVisionTowerIsRefusedWithItsMatches) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  auto s = settings();
  s.target_modules = {"q_proj", "out_proj"};
  try {
    apply_lora(m, s, 1);
    FAIL() << "applied";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'out_proj' matches no module of the language model, "
                                         "only 2 of the vision tower: vision_tower.vision_model."
                                         "encoder.layers.0.self_attn.out_proj"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(adapted_module_paths(m).empty());
  s.target_modules = {"q_proj", "vision_tower.vision_model.encoder.layers.1.self_attn.out_proj"};
  const auto t = lora_targets(m, s);
  EXPECT_EQ(t.counts().at("vision_tower"), 1);
  EXPECT_EQ(t.left_out.size(), 2u);  // CLIP's q_proj of both layers
}

TEST(Lora, RankAndAlphaPatternsPickTheRightModules) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  auto s = settings(4, 8);
  s.rank_pattern = {{"layers\\.1\\.self_attn\\.q_proj", 2}};
  s.alpha_pattern = {{"down_proj", 32}};
  apply_lora(m, s, 0);
  auto layer = [&](int i) { return m->language_model->model->layers[i]->as<LlamaDecoderLayer>(); };
  EXPECT_EQ(layer(0)->self_attn->q_proj->lora_A->weight.size(0), 4);
  EXPECT_EQ(layer(1)->self_attn->q_proj->lora_A->weight.size(0), 2);
  EXPECT_EQ(layer(1)->self_attn->q_proj->lora_B->weight.size(1), 2);
  EXPECT_EQ(layer(1)->self_attn->v_proj->lora_A->weight.size(0), 4);
  EXPECT_DOUBLE_EQ(layer(1)->self_attn->q_proj->lora_options().scaling(), 4.0);  // 8/2
  EXPECT_DOUBLE_EQ(layer(0)->mlp->down_proj->lora_options().scaling(), 8.0);     // 32/4
  EXPECT_DOUBLE_EQ(layer(0)->self_attn->v_proj->lora_options().scaling(), 2.0);
}

TEST(Lora, OnlyLoraAndProjectorRequireGrad) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  apply_lora(m, settings(), 0);
  auto g = set_trainable(m, /*lora_mode=*/true, /*train_projector=*/true);
  EXPECT_EQ(g.lora.size(), 12u);
  EXPECT_EQ(g.projector.size(), 4u);
  EXPECT_TRUE(g.other.empty());
  for (auto& item : m->named_parameters()) {
    const TensorClass c = classify(item.key());
    bool should = c.is_lora() || c.role == TensorRole::kProjector;
    EXPECT_EQ(item.value().requires_grad(), should) << item.key();
  }
  randomize_b(m);
  auto in = sample_batch(c);
  auto b = m->splice(in, 64);
  causal_lm_loss(m->forward(b), b.labels).backward();
  for (auto& item : m->named_parameters())
    EXPECT_EQ(item.value().grad().defined(), item.value().requires_grad()) << item.key();
  auto full = set_trainable(m, /*lora_mode=*/false, /*train_projector=*/false);
  EXPECT_TRUE(full.lora.empty());
  EXPECT_TRUE(full.projector.empty());
  EXPECT_EQ(full.other.size(), 2u * 9 + 3);  // 9 per layer + embed, norm, lm_head
  EXPECT_FALSE(m->vision_tower->vision_model->pre_layrnorm->weight.requires_grad());
}

TEST(Lora, AdaptersStayFp32OnBf16Base) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c);
  m->to_precision(torch::kBFloat16, torch::kCPU);
  apply_lora(m, settings(), 0);
  auto q = m->language_model->model->layers[0]->as<LlamaDecoderLayer>()->self_attn->q_proj;
  EXPECT_EQ(q->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(q->lora_A->weight.scalar_type(), torch::kFloat32);
  randomize_b(m);
  auto in = sample_batch(c);
  auto b = m->splice(in, 64);
  set_trainable(m, true, true);
  causal_lm_loss(m->forward(b), b.labels).backward();
  EXPECT_EQ(q->lora_B->weight.grad().scalar_type(), torch::kFloat32);
  EXPECT_GT(q->lora_B->weight.grad().abs().sum().item<double>(), 0.0);
}

TEST(Lora, GradientsMatchFiniteDifferencesInDouble) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c, 4);
  m->to_precision(torch::kFloat64, torch::kCPU);
  apply_lora(m, settings(2, 4), 5);
  randomize_b(m, 0.2);
  set_trainable(m, true, true);
  auto in = sample_batch(c);
  in.pixel_values = in.pixel_values.to(torch::kFloat64);
  auto loss_of = [&]() {
    auto b = m->splice(in, 64);
    return causal_lm_loss(m->forward(b), b.labels);
  };
  loss_of().backward();
  auto params = m->named_parameters();
  const double eps = 1e-6;
  int checked = 0;
  for (const char* name : {"language_model.model.layers.0.self_attn.q_proj.lora_A.weight",
                           "language_model.model.layers.1.mlp.down_proj.lora_B.weight",
                           "language_model.model.layers.0.self_attn.v_proj.lora_B.weight",
                           "multi_modal_projector.linear_1.weight"}) {
    torch::Tensor p = params[name];
    ASSERT_EQ(p.scalar_type(), torch::kFloat64) << name;
    auto flat = p.view({-1});
    auto grad = p.grad().view({-1});
    for (int64_t i : {int64_t(0), flat.size(0) / 2, flat.size(0) - 1}) {
      double orig = flat[i].item<double>();
      double up, down;
      {
        torch::NoGradGuard no_grad;
        flat[i] = orig + eps;
        up = loss_of().item<double>();
        flat[i] = orig - eps;
        down = loss_of().item<double>();
        flat[i] = orig;
      }
      double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(grad[i].item<double>(), numeric, 1e-6 + 1e-5 * std::abs(numeric))
          << name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 12);
}

TEST(Lora, AdapterFilesUsePeftNamesAndLoadBack) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c, 6);
  auto s = settings();
  s.use_rslora = true;
  s.rank_pattern = {{"down_proj", 2}};
  apply_lora(m, s, 1);
  randomize_b(m);
  {
    torch::NoGradGuard no_grad;
    m->multi_modal_projector->linear_2->bias.fill_(0.5);
  }
  std::string dir = temp_dir("adapter");
  save_adapter(m, s, dir);
  std::ifstream cfg_in(dir + "/adapter_config.json");
  auto cfg = nlohmann::json::parse(cfg_in);
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 8.0);
  EXPECT_EQ(cfg["use_rslora"], true);
  EXPECT_EQ(cfg["rank_pattern"]["down_proj"], 2.0);
  EXPECT_EQ(cfg["base_model_name_or_path"], "tiny-llava");
  // target_modules: a regex PEFT full-matches against exactly the adapted modules, either layout.
  ASSERT_TRUE(cfg["target_modules"].is_string());
  const std::regex peft(cfg["target_modules"].get<std::string>());
  const std::vector<std::string> adapted = adapted_module_paths(m);
  for (const std::string& path : linear_module_paths(m)) {
    const bool trained = std::find(adapted.begin(), adapted.end(), path) != adapted.end();
    EXPECT_EQ(std::regex_match(path, peft), trained) << path;
    EXPECT_EQ(std::regex_match(sweep::module_path_452(path), peft), trained) << path;
  }
  SafetensorsFile f(dir + "/adapter_model.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_TRUE(
      f.contains("base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_TRUE(
      f.contains("base_model.model.language_model.model.layers.1.mlp.down_proj.lora_B.weight"));
  EXPECT_EQ(f.tensors().size(), 12u);
  SafetensorsFile p(dir + "/non_lora_trainables.safetensors");
  EXPECT_TRUE(p.contains("multi_modal_projector.linear_1.weight"));

  LlavaForConditionalGeneration fresh(c, 6);
  auto loaded = load_adapter(fresh, dir, /*seed=*/99);
  EXPECT_TRUE(loaded.use_rslora);
  EXPECT_EQ(loaded.rank_pattern.at("down_proj"), 2.0);
  auto in = sample_batch(c);
  EXPECT_TRUE(torch::equal(logits_of(m, in), logits_of(fresh, in)));
}

TEST(Lora, MergedCheckpointEqualsBasePlusAdapter) {
  auto c = micro_config();
  LlavaForConditionalGeneration m(c, 8);
  auto s = settings();
  s.target_modules = {"all-linear"};
  apply_lora(m, s, 2);
  randomize_b(m);
  auto in = sample_batch(c);
  auto with_adapter = logits_of(m, in);
  merge_lora(m);
  for (auto& item : m->named_parameters())
    EXPECT_FALSE(classify(item.key()).is_lora()) << item.key();
  std::string dir = temp_dir("merged");
  save_llava(m, dir);
  auto merged = load_llava(dir, torch::kFloat32, torch::kCPU);
  auto diff = (logits_of(merged, in) - with_adapter).abs().max().item<double>();
  EXPECT_LT(diff, 1e-5);
}

TEST(Lora, AdapterConfigIsReadLenientlyButChecked) {
  auto j = nlohmann::json::parse(
      R"({"peft_type":"LORA","r":16,"lora_alpha":32,"target_modules":["q_proj"],"new_field":1,"lora_dropout":0.1})");
  auto s = LoraSettings::from_adapter_config(j, "cfg.json");
  EXPECT_EQ(s.r, 16);
  EXPECT_DOUBLE_EQ(s.alpha, 32);
  EXPECT_DOUBLE_EQ(s.dropout, 0.1);
  j["peft_type"] = "IA3";
  try {
    LoraSettings::from_adapter_config(j, "cfg.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "cfg.json: peft_type is \"IA3\", only LORA is supported");
  }
}

}  // namespace
}  // namespace sweep::model
