#include "worker/model/lora.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <stdexcept>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "common/file_system.h"
#include "worker/model/tensor_roles.h"
#include "worker/model/tensor_store.h"

namespace sweep::model {
namespace fs = std::filesystem;
namespace {

// Every LoraLinear under the model, with its path, in registration order.
std::vector<std::pair<std::string, LoraLinearImpl*>> linear_modules(
    LlavaForConditionalGeneration& m) {
  std::vector<std::pair<std::string, LoraLinearImpl*>> out;
  for (const auto& item : m->named_modules(/*name_prefix=*/"", /*include_self=*/false))
    if (auto* lin = dynamic_cast<LoraLinearImpl*>(item.value().get()))
      out.emplace_back(item.key(), lin);
  return out;
}

// PEFT: the first pattern key with re.match(rf"(.*\.)?({key})$", path) wins.
template <typename T>
T pattern_value(const std::map<std::string, double>& patterns, const std::string& path,
                T fallback) {
  for (const auto& [key, value] : patterns)
    if (std::regex_match(path, std::regex("(.*\\.)?(" + key + ")$"))) return T(value);
  return fallback;
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  write_file_atomic(path.string(), j.dump(2) + "\n");
}

// Copies `tensors` (keys already mapped to model parameter names) into m; one error for all faults.
void copy_named(LlavaForConditionalGeneration& m,
                const std::map<std::string, torch::Tensor>& tensors,
                const std::set<std::string>& expected, const std::string& source) {
  torch::NoGradGuard no_grad;
  auto params = m->named_parameters();
  std::vector<std::string> problems;
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    auto* p = params.find(name);
    if (!p) {
      problems.push_back("unexpected tensor " + name);
      continue;
    }
    if (p->sizes() != t.sizes()) {
      std::ostringstream msg;
      msg << "mis-shaped tensor " << name << ": file " << t.sizes() << ", model " << p->sizes();
      problems.push_back(msg.str());
      continue;
    }
    p->copy_(t);
    seen.insert(name);
  }
  for (const auto& name : expected)
    if (!seen.count(name)) problems.push_back("missing tensor " + name);
  if (problems.empty()) return;
  std::string msg = source + " does not match the model:";
  for (const auto& p : problems) msg += "\n  " + p;
  throw std::runtime_error(msg + "\n  hint: was the adapter trained on this base model?");
}

}  // namespace

nlohmann::json LoraSettings::to_adapter_config(const std::vector<std::string>& trained) const {
  // A regex string is full-matched by PEFT against each module name: anchored to the modules
  // trained here, it keeps PEFT off the vision tower's q_proj/k_proj/v_proj that a name list
  // would also wrap, in either transformers layout.
  nlohmann::json config = to_adapter_config();
  config["target_modules"] = adapter_target_regex(trained);
  return config;
}

nlohmann::json LoraSettings::to_adapter_config() const {
  nlohmann::json config = {{"peft_type", "LORA"},
                           {"task_type", "CAUSAL_LM"},
                           {"base_model_name_or_path", base_model_name_or_path},
                           {"r", r},
                           {"lora_alpha", alpha},
                           {"lora_dropout", dropout},
                           {"target_modules", target_regex ? nlohmann::json(*target_regex)
                                                           : nlohmann::json(target_modules)},
                           {"bias", "none"},
                           {"use_rslora", use_rslora},
                           {"rank_pattern", rank_pattern},
                           {"alpha_pattern", alpha_pattern},
                           {"modules_to_save", nullptr},
                           {"fan_in_fan_out", false},
                           {"inference_mode", true},
                           {"init_lora_weights", true},
                           {"use_dora", false}};
  return config;
}

LoraSettings LoraSettings::from_adapter_config(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw std::runtime_error(source + ": not a JSON object");
  LoraSettings s;
  try {
    if (j.contains("peft_type") && j["peft_type"] != "LORA")
      throw std::runtime_error("peft_type is " + j["peft_type"].dump() +
                               ", only LORA is supported");
    s.r = j.value("r", 8);
    s.alpha = j.value("lora_alpha", 8.0);
    s.dropout = j.value("lora_dropout", 0.0);
    s.use_rslora = j.value("use_rslora", false);
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
      s.base_model_name_or_path = j["base_model_name_or_path"];
    const auto& t = j.contains("target_modules") ? j["target_modules"] : nlohmann::json();
    if (t.is_string())
      s.target_regex = t.get<std::string>();  // PEFT: a string is a full-match regex
    else if (t.is_array())
      s.target_modules = t.get<std::vector<std::string>>();
    else
      throw std::runtime_error("target_modules must be a list of module names or a regex");
    for (const char* key : {"rank_pattern", "alpha_pattern"}) {
      if (!j.contains(key) || j[key].is_null()) continue;
      auto& dst = std::string(key) == "rank_pattern" ? s.rank_pattern : s.alpha_pattern;
      for (const auto& [k, v] : j[key].items()) dst[k] = v.get<double>();
    }
    if (j.value("fan_in_fan_out", false))
      throw std::runtime_error("fan_in_fan_out=true is not supported");
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(source + ": wrong type in adapter config (" + e.what() + ")");
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
  return s;
}

std::vector<std::string> linear_module_paths(LlavaForConditionalGeneration& m) {
  std::vector<std::string> out;
  for (const auto& [path, lin] : linear_modules(m)) out.push_back(path);
  return out;
}

LoraTargets lora_targets(LlavaForConditionalGeneration& m, const LoraSettings& s) {
  LoraTargetRequest request;
  request.target_modules = s.target_modules;
  request.target_regex = s.target_regex;
  request.vision_tower = s.include_vision_tower;
  return resolve_lora_targets(linear_module_paths(m), request);
}

std::vector<std::string> lora_target_paths(LlavaForConditionalGeneration& m,
                                           const LoraSettings& s) {
  return lora_targets(m, s).modules;
}

std::vector<std::string> adapted_module_paths(LlavaForConditionalGeneration& m) {
  std::vector<std::string> out;
  for (const auto& [path, lin] : linear_modules(m))
    if (lin->has_lora()) out.push_back(path);
  return out;
}

std::vector<std::string> apply_lora(LlavaForConditionalGeneration& m, const LoraSettings& s,
                                    uint64_t seed) {
  std::vector<std::string> targets = lora_target_paths(m, s);
  std::set<std::string> wanted(targets.begin(), targets.end());
  uint64_t index = 0;
  for (const auto& [path, lin] : linear_modules(m)) {
    if (!wanted.count(path)) continue;
    LoraAdapterOptions o;
    o.r = pattern_value<int64_t>(s.rank_pattern, path, s.r);
    o.alpha = pattern_value<double>(s.alpha_pattern, path, s.alpha);
    o.dropout = s.dropout;
    o.use_rslora = s.use_rslora;
    lin->attach_lora(o, seed * 1000003ull + index++);
  }
  // One dropout stream per model, drawn from the job's seed: jobs packed into one process each
  // draw the masks they would draw alone (worker/model/pack.h).
  at::Generator dropout = at::make_generator<at::CPUGeneratorImpl>(seed ^ 0x6c6f72615f64726full);
  for (const auto& [path, lin] : linear_modules(m))
    if (lin->has_lora()) lin->set_dropout_generator(dropout);
  m->language_model->model->set_dropout_generators({dropout});
  if (!m->is_training()) m->eval();  // new dropout modules follow the model's mode
  return targets;
}

at::Generator lora_dropout_generator(LlavaForConditionalGeneration& m) {
  for (const auto& [path, lin] : linear_modules(m))
    if (lin->has_lora() && lin->dropout_generator().defined()) return lin->dropout_generator();
  return {};
}

TrainableGroups set_trainable(LlavaForConditionalGeneration& m, bool lora_mode,
                              bool train_projector) {
  TrainableGroups g;
  for (auto& item : m->named_parameters()) {
    const TensorClass c = classify(item.key());
    torch::Tensor& p = item.value();
    const bool is_language = c.part == ModelPart::kLanguageModel;
    bool train = false;
    if (c.role == TensorRole::kProjector) {
      train = train_projector;
      if (train) g.projector.push_back(p);
    } else if (lora_mode ? c.is_lora() : (is_language && !c.is_lora())) {
      train = true;
      (c.is_lora() ? g.lora : g.other).push_back(p);
    }
    p.set_requires_grad(train);
    if (!train && p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
  return g;
}

void save_adapter(LlavaForConditionalGeneration& m, const LoraSettings& s, const std::string& dir) {
  fs::create_directories(dir);
  write_json(fs::path(dir) / "adapter_config.json", s.to_adapter_config(adapted_module_paths(m)));
  std::vector<std::pair<std::string, torch::Tensor>> adapter, projector;
  for (auto& item : m->named_parameters()) {
    const TensorClass c = classify(item.key());
    if (c.is_lora())
      adapter.emplace_back(peft_adapter_key(item.key()), item.value());
    else if (c.role == TensorRole::kProjector)
      projector.emplace_back(item.key(), item.value());
  }
  if (adapter.empty()) throw std::runtime_error("save_adapter: the model has no LoRA adapters");
  save_tensors(dir + "/adapter_model.safetensors", adapter, {{"format", "pt"}});
  save_tensors(dir + "/non_lora_trainables.safetensors", projector, {{"format", "pt"}});
}

LoraSettings load_adapter(LlavaForConditionalGeneration& m, const std::string& dir, uint64_t seed) {
  std::string config_path = dir + "/adapter_config.json";
  std::ifstream in(config_path);
  if (!in)
    throw std::runtime_error("cannot read " + config_path + " (not a PEFT adapter directory?)");
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw std::runtime_error(config_path + ": not valid JSON");
  LoraSettings s = LoraSettings::from_adapter_config(j, config_path);
  std::string weights_path = dir + "/adapter_model.safetensors";
  TensorStore store = TensorStore::open_file(weights_path);
  std::map<std::string, torch::Tensor> mapped;
  for (const auto& [key, t] : store.tensors()) {
    std::string name = canonical_adapter_key(key);
    if (classify(name).part == ModelPart::kVisionTower) s.include_vision_tower = true;
    mapped[name] = t;
  }
  apply_lora(m, s, seed);
  std::set<std::string> expected;
  for (auto& item : m->named_parameters())
    if (classify(item.key()).is_lora()) expected.insert(item.key());
  copy_named(m, mapped, expected, weights_path);
  std::string projector_path = dir + "/non_lora_trainables.safetensors";
  if (fs::exists(projector_path)) {
    TensorStore p = TensorStore::open_file(projector_path);
    std::map<std::string, torch::Tensor> proj;
    for (const auto& [key, t] : p.tensors()) proj[canonical_adapter_key(key)] = t;
    copy_named(m, proj, {}, projector_path);
  }
  return s;
}

void merge_lora(LlavaForConditionalGeneration& m) {
  for (const auto& [path, lin] : linear_modules(m)) lin->merge_lora();
}

}  // namespace sweep::model
