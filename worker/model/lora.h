// PEFT LoRA on the LLaVA model: choosing target modules, trainable parameter groups, adapter files
// (PEFT's adapter_config.json + adapter_model.safetensors, LLaVA's non_lora_trainables) and
// merging.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/types.h>
#include <nlohmann/json_fwd.hpp>

#include "protocol/lora_targets.h"
#include "worker/model/llava.h"

namespace sweep::model {

struct LoraSettings {
  int r = 8;
  double alpha = 16;
  double dropout = 0.05;
  // Module names as PEFT matches them: a module is targeted when its path equals a name or ends
  // with "." + name, within the parts the name may reach (protocol/lora_targets.h). "all-linear"
  // targets every Linear of the language model except lm_head.
  std::vector<std::string> target_modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};
  // An adapter config whose target_modules is a string: a regex PEFT full-matches against the
  // module path (either transformers layout); target_modules is then ignored.
  std::optional<std::string> target_regex;
  bool use_rslora = false;
  bool include_vision_tower = false;  // also wrap matching vision-tower modules
  // regex -> value, matched against the module path as "(.*\.)?(KEY)$"; first match in key order.
  std::map<std::string, double> rank_pattern, alpha_pattern;
  std::string base_model_name_or_path;

  // PEFT adapter_config.json with target_modules as this object holds them (a list).
  nlohmann::json to_adapter_config() const;
  // PEFT adapter_config.json whose target_modules is the regex that matches exactly `trained`
  // (module paths) in both transformers layouts (adapter_target_regex): what save_adapter writes.
  nlohmann::json to_adapter_config(const std::vector<std::string>& trained) const;
  // Lenient: unknown fields ignored; throws naming `source` on a wrong type or peft_type != LORA.
  static LoraSettings from_adapter_config(const nlohmann::json& j, const std::string& source);
};

// The model's Linear module paths, in model order.
std::vector<std::string> linear_module_paths(LlavaForConditionalGeneration& m);
// What `s` targets in `m`, by the rule shared with the orchestrator (resolve_lora_targets):
// the module paths and those PEFT's rule would also match but were left out. Throws Failure
// (kUser) when a target entry reaches nothing, listing what it matches instead.
LoraTargets lora_targets(LlavaForConditionalGeneration& m, const LoraSettings& s);
// Module paths (e.g. "language_model.model.layers.0.self_attn.q_proj") that `s` targets, in model
// order: lora_targets(m, s).modules.
std::vector<std::string> lora_target_paths(LlavaForConditionalGeneration& m, const LoraSettings& s);
// Module paths that carry an adapter now, in model order.
std::vector<std::string> adapted_module_paths(LlavaForConditionalGeneration& m);
// Attaches adapters (rank/alpha per rank_pattern/alpha_pattern) to every targeted module; A is
// drawn from `seed` and the module's index, B is zero. The adapters' dropout masks come from one
// CPU generator seeded from `seed` (lora_dropout_generator). Returns the wrapped module paths.
std::vector<std::string> apply_lora(LlavaForConditionalGeneration& m, const LoraSettings& s,
                                    uint64_t seed);
// The generator apply_lora gave the adapters (its state belongs in a resumable checkpoint);
// undefined when the model has no adapter.
at::Generator lora_dropout_generator(LlavaForConditionalGeneration& m);

struct TrainableGroups {
  std::vector<torch::Tensor> lora;       // lora_A / lora_B weights
  std::vector<torch::Tensor> projector;  // multi_modal_projector.*
  std::vector<torch::Tensor> other;      // full mode: language-model weights
};
// LoRA mode: only adapters (+ projector when train_projector) require grad. Full mode: every
// language-model weight (+ projector); the vision tower stays frozen either way. Frozen tensors
// get requires_grad(false), so they hold no gradient and get no optimizer state.
TrainableGroups set_trainable(LlavaForConditionalGeneration& m, bool lora_mode,
                              bool train_projector);

// Writes adapter_config.json, adapter_model.safetensors (PEFT keys
// "base_model.model.<module path>.lora_{A,B}.weight", metadata format=pt) and
// non_lora_trainables.safetensors (multi_modal_projector.*) into dir (created if missing).
void save_adapter(LlavaForConditionalGeneration& m, const LoraSettings& s, const std::string& dir);
// Reads dir's adapter_config.json, applies LoRA with it, loads A/B (keys of either transformers
// layout) and, if present, non_lora_trainables.safetensors. Throws on missing/mis-shaped keys.
LoraSettings load_adapter(LlavaForConditionalGeneration& m, const std::string& dir, uint64_t seed);
// Folds every adapter into its base weight (W += scaling * B @ A in fp32) and removes it.
void merge_lora(LlavaForConditionalGeneration& m);

}  // namespace sweep::model
