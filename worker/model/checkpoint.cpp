#include "worker/model/checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "common/file_system.h"
#include "worker/model/tensor_store.h"

namespace sweep::model {
namespace fs = std::filesystem;
namespace {

std::string shape_str(torch::IntArrayRef s) {
  std::ostringstream out;
  out << s;
  return out.str();
}

std::string list_block(const char* title, const std::vector<std::string>& items) {
  if (items.empty()) return "";
  std::string out = std::string("\n  ") + title + " (" + std::to_string(items.size()) + "):";
  for (const auto& i : items) out += "\n    " + i;
  return out;
}

}  // namespace

void load_llava_weights(LlavaForConditionalGeneration& m,
                        const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& source) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> params;
  for (auto& item : m->named_parameters())
    if (!classify(item.key()).is_lora()) params[item.key()] = item.value();
  std::vector<std::string> unexpected, misshaped;
  std::set<std::string> loaded;
  for (const auto& [file_name, t] : tensors) {
    std::string name = canonical_tensor_name(file_name);
    auto it = params.find(name);
    if (it == params.end()) {
      if (classify(name).role != TensorRole::kRecomputed) unexpected.push_back(file_name);
      continue;
    }
    if (it->second.sizes() != t.sizes()) {
      misshaped.push_back(file_name + ": file " + shape_str(t.sizes()) + ", model " +
                          shape_str(it->second.sizes()));
      loaded.insert(name);  // reported as mis-shaped, not also as missing
      continue;
    }
    it->second.copy_(t);
    loaded.insert(name);
  }
  if (!loaded.count(kLmHeadWeight) && loaded.count(kEmbedTokensWeight) &&
      m->config().text.tie_word_embeddings) {
    params[kLmHeadWeight].copy_(params[kEmbedTokensWeight]);
    loaded.insert(kLmHeadWeight);
  }
  std::vector<std::string> missing;
  for (const auto& [name, p] : params)
    if (!loaded.count(name)) missing.push_back(name);
  if (missing.empty() && unexpected.empty() && misshaped.empty()) return;
  throw std::runtime_error(
      "checkpoint " + source + " does not match its config.json" +
      list_block("missing tensors", missing) + list_block("unexpected tensors", unexpected) +
      list_block("mis-shaped tensors", misshaped) +
      "\n  hint: check that config.json belongs to these weights (layouts read: llava-hf, "
      "transformers >= 4.52, original LLaVA; see docs/model.md)");
}

LlavaForConditionalGeneration load_llava(const std::string& model_dir, torch::Dtype base_dtype,
                                         torch::Device device) {
  LlavaConfig config = LlavaConfig::load(model_dir);
  LlavaForConditionalGeneration m = empty_llava(config, base_dtype, device);
  {
    TensorStore store = TensorStore::open_dir(model_dir);
    load_llava_weights(m, store.tensors(), model_dir);
  }  // the memory maps close here; the model holds copies
  m->to_precision(base_dtype, device);
  return m;
}

TensorLayout layout_of_model_dir(const std::string& model_dir) {
  TensorStore store = TensorStore::open_dir(model_dir);
  std::vector<std::string> names;
  for (const auto& item : store.tensors()) names.push_back(item.first);
  return detect_layout(names);
}

void save_llava(LlavaForConditionalGeneration& m, const std::string& dir, TensorLayout layout) {
  fs::path target = fs::absolute(fs::path(dir).lexically_normal());
  if (target.filename().empty()) target = target.parent_path();
  fs::path tmp = target.string() + ".tmp-" + std::to_string(::getpid());
  remove_all(tmp.string());
  create_directories(tmp.string());
  nlohmann::json config = m->config().to_json();
  config["torch_dtype"] = m->base_dtype() == torch::kBFloat16  ? "bfloat16"
                          : m->base_dtype() == torch::kFloat16 ? "float16"
                                                               : "float32";
  write_file_atomic((tmp / "config.json").string(), config.dump(2) + "\n");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& item : m->named_parameters())
    if (!classify(item.key()).is_lora())
      tensors.emplace_back(tensor_name_in_layout(item.key(), layout), item.value());
  save_tensors((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}});
  fs::path old = target.string() + ".old-" + std::to_string(::getpid());
  if (fs::exists(target)) rename_path(target.string(), old.string());
  rename_path(tmp.string(), target.string());
  remove_all(old.string());
}

}  // namespace sweep::model
