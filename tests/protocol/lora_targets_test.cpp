// The LoRA target rule shared by the worker and the orchestrator, and the regex written as
// adapter_config.json's target_modules, checked with PEFT's own rule (re.fullmatch) reproduced by
// std::regex_match on both transformers layouts.
#include "protocol/lora_targets.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "common/failure.h"

namespace sweep {
namespace {

using Paths = std::vector<std::string>;

// The Linear modules of a LLaVA with a 2-layer CLIP and a 2-layer LLaMA, in model order.
Paths tiny_linears() {
  Paths p;
  for (int i = 0; i < 2; ++i)
    for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.out_proj", "mlp.fc1", "mlp.fc2"})
      p.push_back("vision_tower.vision_model.encoder.layers." + std::to_string(i) + "." + m);
  p.push_back("multi_modal_projector.linear_1");
  p.push_back("multi_modal_projector.linear_2");
  for (int i = 0; i < 2; ++i)
    for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
      p.push_back("language_model.model.layers." + std::to_string(i) + "." + m);
  p.push_back("language_model.lm_head");
  return p;
}

const Paths kDefaultTargets = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                               "gate_proj", "up_proj", "down_proj"};

LoraTargetRequest names(Paths targets, bool vision_tower = false) {
  LoraTargetRequest r;
  r.target_modules = std::move(targets);
  r.vision_tower = vision_tower;
  return r;
}

std::string refusal(const LoraTargetRequest& r) {
  try {
    resolve_lora_targets(tiny_linears(), r);
  } catch (const Failure& f) {
    EXPECT_EQ(f.kind(), ErrorKind::kUser);
    return f.error().message;
  }
  ADD_FAILURE() << "not refused";
  return "";
}

TEST(PeftNameRule, MatchesTheWholeNameOrADottedSuffix) {
  EXPECT_TRUE(peft_name_matches("language_model.model.layers.0.self_attn.q_proj", "q_proj"));
  EXPECT_TRUE(
      peft_name_matches("language_model.model.layers.0.self_attn.q_proj", "self_attn.q_proj"));
  EXPECT_TRUE(peft_name_matches("q_proj", "q_proj"));
  EXPECT_FALSE(peft_name_matches("language_model.model.layers.0.self_attn.q_proj", "proj"));
  EXPECT_FALSE(peft_name_matches("language_model.model.layers.0.self_attn.xq_proj", "q_proj"));
}

TEST(LoraTargets, ShortNamesStayInTheLanguageModelAndReportWhatPeftWouldAlsoWrap) {
  LoraTargets t = resolve_lora_targets(tiny_linears(), names(kDefaultTargets));
  EXPECT_EQ(t.modules.size(), 14u);
  for (const std::string& m : t.modules) EXPECT_EQ(m.rfind("language_model.model.layers.", 0), 0u);
  // CLIP's q/k/v_proj match PEFT's rule for q_proj/k_proj/v_proj: left out, and said so.
  EXPECT_EQ(t.left_out.size(), 6u);
  EXPECT_EQ(t.left_out[0], "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj");
  const auto counts = t.counts();
  EXPECT_EQ(counts.at("language_model"), 14);
  EXPECT_EQ(counts.at("vision_tower"), 0);
  EXPECT_EQ(counts.at("projector"), 0);
  const auto report = t.report();
  EXPECT_EQ(report["modules"]["language_model"].size(), 14u);
  EXPECT_EQ(report["left_out"].size(), 6u);
}

TEST(LoraTargets, TheVisionTowerIsReachedOnlyWhenAskedFor) {
  LoraTargets with_option = resolve_lora_targets(tiny_linears(), names({"q_proj"}, true));
  EXPECT_EQ(with_option.counts().at("vision_tower"), 2);
  EXPECT_EQ(with_option.counts().at("language_model"), 2);
  EXPECT_TRUE(with_option.left_out.empty());
  // Named by a path containing vision_tower: that entry reaches the tower.
  LoraTargets by_path = resolve_lora_targets(
      tiny_linears(), names({"q_proj", "vision_tower.vision_model.encoder.layers.1.mlp.fc1"}));
  EXPECT_EQ(by_path.counts().at("vision_tower"), 1);
  EXPECT_EQ(by_path.modules.front(), "vision_tower.vision_model.encoder.layers.1.mlp.fc1");
  LoraTargets projector =
      resolve_lora_targets(tiny_linears(), names({"q_proj", "multi_modal_projector.linear_1"}));
  EXPECT_EQ(projector.counts().at("projector"), 1);
}

TEST(LoraTargets, AnEntryThatReachesOnlyTheVisionTowerIsRefusedWithItsMatches) {
  EXPECT_EQ(refusal(names({"q_proj", "fc1"})),
            "lora target_modules [q_proj, fc1]: 'fc1' matches no module of the language model, "
            "only 2 of the vision tower: vision_tower.vision_model.encoder.layers.0.mlp.fc1, "
            "vision_tower.vision_model.encoder.layers.1.mlp.fc1");
  EXPECT_NE(refusal(names({"linear_1"}))
                .find("only 1 of the projector: "
                      "multi_modal_projector.linear_1"),
            std::string::npos);
}

TEST(LoraTargets, AnEntryThatMatchesNothingIsRefused) {
  EXPECT_EQ(refusal(names({"proj"})),
            "lora target_modules [proj]: 'proj' matches no Linear module of the model");
  EXPECT_EQ(refusal(names({})), "lora target_modules []: the list is empty");
}

TEST(LoraTargets, AllLinearIsTheLanguageModelWithoutLmHead) {
  LoraTargets t = resolve_lora_targets(tiny_linears(), names({"all-linear"}));
  EXPECT_EQ(t.modules.size(), 14u);
  EXPECT_EQ(t.counts().at("vision_tower"), 0);
  LoraTargets head = resolve_lora_targets(tiny_linears(), names({"lm_head"}));
  EXPECT_EQ(head.modules, Paths{"language_model.lm_head"});
}

TEST(LoraTargets, NamesOfTheNewerLayoutMatchToo) {
  LoraTargets t = resolve_lora_targets(tiny_linears(),
                                       names({"model.language_model.layers.1.self_attn.q_proj"}));
  EXPECT_EQ(t.modules, Paths{"language_model.model.layers.1.self_attn.q_proj"});
}

TEST(LoraTargets, LinearPathsComeFromTheHeaderInEitherLayout) {
  std::map<std::string, std::vector<int64_t>> hf = {
      {"language_model.model.embed_tokens.weight", {512, 128}},
      {"language_model.model.layers.10.self_attn.q_proj.weight", {128, 128}},
      {"language_model.model.layers.2.self_attn.q_proj.weight", {128, 128}},
      {"language_model.model.layers.2.input_layernorm.weight", {128}},
      {"vision_tower.vision_model.embeddings.patch_embedding.weight", {64, 3, 8, 8}},
      {"vision_tower.vision_model.embeddings.position_embedding.weight", {65, 64}},
      {"vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", {128, 64}},
      {"vision_tower.vision_model.encoder.layers.0.mlp.fc1.bias", {128}},
      {"multi_modal_projector.linear_1.weight", {128, 64}},
  };
  const Paths expected = {"vision_tower.vision_model.encoder.layers.0.mlp.fc1",
                          "multi_modal_projector.linear_1", "language_model.lm_head",
                          "language_model.model.layers.2.self_attn.q_proj",
                          "language_model.model.layers.10.self_attn.q_proj"};
  EXPECT_EQ(linear_paths_from_tensors(hf), expected);
  std::map<std::string, std::vector<int64_t>> v452;
  for (const auto& [name, shape] : hf) {
    std::string n = name;
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"language_model.model.", "model.language_model."},
          {"vision_tower.", "model.vision_tower."},
          {"multi_modal_projector.", "model.multi_modal_projector."}})
      if (n.rfind(from, 0) == 0) {
        n = to + n.substr(from.size());
        break;
      }
    v452[n] = shape;
  }
  v452["lm_head.weight"] = {512, 128};
  EXPECT_EQ(linear_paths_from_tensors(v452), expected);
}

// PEFT's rule for a string target_modules: re.fullmatch(target, module_name).
Paths peft_regex_matches(const std::string& regex, const Paths& module_names) {
  const std::regex re(regex);
  Paths out;
  for (const std::string& name : module_names)
    if (std::regex_match(name, re)) out.push_back(name);
  return out;
}

Paths in_452_layout(const Paths& paths) {
  Paths out;
  for (const std::string& p : paths) out.push_back(module_path_452(p));
  return out;
}

// Every module name of transformers' LlavaForConditionalGeneration that holds a Linear, plus the
// containers PEFT also visits (a regex must not match those either).
Paths all_module_names(const Paths& linears) {
  Paths out = linears;
  out.push_back("language_model");
  out.push_back("language_model.model");
  out.push_back("language_model.model.layers.0");
  out.push_back("language_model.model.layers.0.self_attn");
  out.push_back("vision_tower.vision_model.encoder.layers.0.self_attn");
  out.push_back("multi_modal_projector");
  return out;
}

TEST(AdapterTargetRegex, PeftFullMatchFindsExactlyTheTrainedModulesInBothLayouts) {
  for (const LoraTargetRequest& request :
       {names(kDefaultTargets), names({"q_proj", "v_proj"}), names({"all-linear", "lm_head"}),
        names({"q_proj"}, /*vision_tower=*/true),
        names({"down_proj", "multi_modal_projector.linear_2"})}) {
    const LoraTargets t = resolve_lora_targets(tiny_linears(), request);
    const std::string regex = adapter_target_regex(t.modules);
    // llava-hf layout (transformers < 4.52)
    EXPECT_EQ(peft_regex_matches(regex, all_module_names(tiny_linears())), t.modules) << regex;
    // transformers >= 4.52: model.language_model.layers.N..., lm_head, model.vision_tower...
    EXPECT_EQ(peft_regex_matches(regex, in_452_layout(all_module_names(tiny_linears()))),
              in_452_layout(t.modules))
        << regex;
  }
}

TEST(AdapterTargetRegex, GroupsLayersAndStaysOffClip) {
  const LoraTargets t = resolve_lora_targets(tiny_linears(), names({"q_proj", "v_proj"}));
  EXPECT_EQ(adapter_target_regex(t.modules),
            "(?:language_model\\.model\\.|model\\.language_model\\.)layers\\.(?:0|1)\\."
            "(?:self_attn\\.q_proj|self_attn\\.v_proj)");
  for (const std::string& clip : {"vision_tower.vision_model.encoder.layers.0.self_attn.q_proj",
                                  "model.vision_tower.vision_model.encoder.layers.0.self_attn."
                                  "q_proj"})
    EXPECT_FALSE(std::regex_match(clip, std::regex(adapter_target_regex(t.modules)))) << clip;
}

TEST(AdapterTargetRegex, AResolvedRegexRequestFindsTheSameModules) {
  const LoraTargets t = resolve_lora_targets(tiny_linears(), names(kDefaultTargets));
  LoraTargetRequest again;
  again.target_regex = adapter_target_regex(t.modules);
  EXPECT_EQ(resolve_lora_targets(tiny_linears(), again).modules, t.modules);
}

}  // namespace
}  // namespace sweep
