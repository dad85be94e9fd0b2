// Which Linear modules of a LLaVA model get a LoRA adapter: the one rule, shared by the worker
// (apply_lora, on the model's own modules) and the orchestrator (`sweep lint/plan/run`, on the
// tensor names of the base model's safetensors header), so both decide alike before any job runs.
// docs/sweep-file.md ("LoRA targets") documents the rule; LibTorch-free.
//
// Module paths are the llava-hf names (language_model.model.layers.0.self_attn.q_proj,
// vision_tower.vision_model.encoder.layers.0.self_attn.q_proj, multi_modal_projector.linear_1,
// language_model.lm_head); canonical_module_path maps the other layouts onto them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep {

// The three parts a report counts; the lm_head counts with the language model.
enum class LoraComponent { kLanguageModel, kProjector, kVisionTower, kOther };

// "language_model", "projector", "vision_tower", "other".
const char* component_name(LoraComponent c);
// The part a module path (any layout) belongs to.
LoraComponent lora_component(const std::string& module_path);
// The llava-hf path of a module path of any layout (transformers >= 4.52: model.language_model.*,
// lm_head, model.vision_tower.*, model.multi_modal_projector.*; original LLaVA: model.layers.*,
// model.mm_projector.{0,2}, model.vision_tower.vision_tower.*); llava-hf paths are unchanged.
std::string canonical_module_path(const std::string& module_path);
// The same module in the transformers >= 4.52 layout.
std::string module_path_452(const std::string& llava_hf_path);

// PEFT's rule for one entry of a target list: the path equals the entry or ends with "." + entry.
bool peft_name_matches(const std::string& module_path, const std::string& entry);

// What a job asks for: a list of names (PEFT's list rule, scoped as below) or, from an adapter
// config written as a regex string, a regex matched against the full module path (either layout).
struct LoraTargetRequest {
  std::vector<std::string> target_modules;
  std::optional<std::string> target_regex;  // set: target_modules is ignored
  bool vision_tower = false;                // lora_vision_tower: short names reach CLIP too
};

// The modules a request resolves to, by component, in model order.
struct LoraTargets {
  std::vector<std::string> modules;  // every targeted module path
  // Modules PEFT's rule matches that are left out because the request did not ask for their
  // part (CLIP's q_proj for the entry q_proj, without lora_vision_tower).
  std::vector<std::string> left_out;
  std::map<std::string, int> counts() const;  // component name -> targeted modules (all three)
  nlohmann::json report() const;              // lora_targets.json
};

// Resolves `request` over the model's Linear module paths (llava-hf names, model order).
// An entry reaches the language model (lm_head included) always; the vision tower only with
// request.vision_tower or when the entry itself contains "vision_tower"; the projector only when
// the entry contains "multi_modal_projector". Throws Failure (kUser) when an entry (or the whole
// request) targets nothing it may reach; the message lists what the entry matches instead and
// how to ask for it.
LoraTargets resolve_lora_targets(const std::vector<std::string>& linear_paths,
                                 const LoraTargetRequest& request);

// The Linear module paths (llava-hf names) of a checkpoint from its tensor names and shapes:
// every 2-D "<module>.weight" except the embeddings, plus language_model.lm_head (a Linear even
// when the file ties it to the embeddings). Sorted in model order (vision tower, projector,
// language model; layers by number).
std::vector<std::string> linear_paths_from_tensors(
    const std::map<std::string, std::vector<int64_t>>& shapes);

// `target_modules` for adapter_config.json: a regex that PEFT (re.fullmatch on the module name
// of a transformers LlavaForConditionalGeneration) matches against exactly `trained` (llava-hf
// paths), in the llava-hf layout (language_model.model.layers.N...) and in the >= 4.52 one
// (model.language_model.layers.N...), and against nothing else.
std::string adapter_target_regex(const std::vector<std::string>& trained);

}  // namespace sweep
