#include "worker/model/llava_config.h"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace sweep::model {
namespace {

// Reads j[key] into out when present; a present key of the wrong type is an error naming it.
template <typename T>
void read(const nlohmann::json& j, const char* section, const char* key, T& out) {
  if (!j.contains(key) || j[key].is_null()) return;
  try {
    out = j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error(std::string("config.json: ") + section + key +
                             " has the wrong type (" + j[key].dump() + ")");
  }
}

VisionConfig vision_from_json(const nlohmann::json& j) {
  VisionConfig v;
  const char* s = "vision_config.";
  read(j, s, "hidden_size", v.hidden_size);
  read(j, s, "intermediate_size", v.intermediate_size);
  read(j, s, "num_hidden_layers", v.num_hidden_layers);
  read(j, s, "num_attention_heads", v.num_attention_heads);
  read(j, s, "num_channels", v.num_channels);
  read(j, s, "image_size", v.image_size);
  read(j, s, "patch_size", v.patch_size);
  read(j, s, "layer_norm_eps", v.layer_norm_eps);
  read(j, s, "hidden_act", v.hidden_act);
  read(j, s, "projection_dim", v.projection_dim);
  return v;
}

TextConfig text_from_json(const nlohmann::json& j) {
  TextConfig t;
  const char* s = "text_config.";
  read(j, s, "vocab_size", t.vocab_size);
  read(j, s, "hidden_size", t.hidden_size);
  read(j, s, "intermediate_size", t.intermediate_size);
  read(j, s, "num_hidden_layers", t.num_hidden_layers);
  read(j, s, "num_attention_heads", t.num_attention_heads);
  t.num_key_value_heads = t.num_attention_heads;
  read(j, s, "num_key_value_heads", t.num_key_value_heads);
  t.head_dim = t.num_attention_heads > 0 ? t.hidden_size / t.num_attention_heads : 0;
  read(j, s, "head_dim", t.head_dim);
  read(j, s, "max_position_embeddings", t.max_position_embeddings);
  read(j, s, "rms_norm_eps", t.rms_norm_eps);
  read(j, s, "rope_theta", t.rope_theta);
  read(j, s, "hidden_act", t.hidden_act);
  read(j, s, "tie_word_embeddings", t.tie_word_embeddings);
  read(j, s, "bos_token_id", t.bos_token_id);
  read(j, s, "eos_token_id", t.eos_token_id);
  read(j, s, "pad_token_id", t.pad_token_id);
  return t;
}

nlohmann::json vision_to_json(const VisionConfig& v) {
  return {{"model_type", "clip_vision_model"},
          {"hidden_size", v.hidden_size},
          {"intermediate_size", v.intermediate_size},
          {"num_hidden_layers", v.num_hidden_layers},
          {"num_attention_heads", v.num_attention_heads},
          {"num_channels", v.num_channels},
          {"image_size", v.image_size},
          {"patch_size", v.patch_size},
          {"layer_norm_eps", v.layer_norm_eps},
          {"hidden_act", v.hidden_act},
          {"projection_dim", v.projection_dim}};
}

nlohmann::json text_to_json(const TextConfig& t) {
  return {{"model_type", "llama"},
          {"vocab_size", t.vocab_size},
          {"hidden_size", t.hidden_size},
          {"intermediate_size", t.intermediate_size},
          {"num_hidden_layers", t.num_hidden_layers},
          {"num_attention_heads", t.num_attention_heads},
          {"num_key_value_heads", t.num_key_value_heads},
          {"head_dim", t.head_dim},
          {"max_position_embeddings", t.max_position_embeddings},
          {"rms_norm_eps", t.rms_norm_eps},
          {"rope_theta", t.rope_theta},
          {"hidden_act", t.hidden_act},
          {"tie_word_embeddings", t.tie_word_embeddings},
          {"bos_token_id", t.bos_token_id},
          {"eos_token_id", t.eos_token_id},
          {"pad_token_id", t.pad_token_id}};
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("config.json: " + what);
}

}  // namespace

LlavaConfig LlavaConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::runtime_error("config.json: top level is not a JSON object");
  LlavaConfig c;
  // transformers' LlavaConfig: an absent vision_config means CLIP ViT-L/14-336.
  nlohmann::json vision = j.value("vision_config", nlohmann::json{{"hidden_size", 1024},
                                                                  {"intermediate_size", 4096},
                                                                  {"patch_size", 14},
                                                                  {"image_size", 336},
                                                                  {"num_hidden_layers", 24},
                                                                  {"num_attention_heads", 16},
                                                                  {"projection_dim", 768}});
  require(vision.is_object(), "vision_config is not an object");
  nlohmann::json text = j.value("text_config", nlohmann::json::object());
  require(text.is_object(), "text_config is not an object");
  c.vision = vision_from_json(vision);
  c.text = text_from_json(text);
  read(j, "", "image_token_index", c.image_token_index);
  read(j, "", "projector_hidden_act", c.projector_hidden_act);
  read(j, "", "vision_feature_layer", c.vision_feature_layer);
  read(j, "", "vision_feature_select_strategy", c.vision_feature_select_strategy);
  c.validate();
  return c;
}

nlohmann::json LlavaConfig::to_json() const {
  return {{"architectures", {"LlavaForConditionalGeneration"}},
          {"model_type", "llava"},
          {"vision_config", vision_to_json(vision)},
          {"text_config", text_to_json(text)},
          {"image_token_index", image_token_index},
          {"projector_hidden_act", projector_hidden_act},
          {"vision_feature_layer", vision_feature_layer},
          {"vision_feature_select_strategy", vision_feature_select_strategy},
          {"torch_dtype", "float32"}};
}

LlavaConfig LlavaConfig::load(const std::string& model_dir) {
  std::string path = model_dir + "/config.json";
  if (!std::ifstream(path))
    throw std::runtime_error("cannot read " + path + " (is " + model_dir + " a model directory?)");
  return load_file(path);
}

LlavaConfig LlavaConfig::load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  try {
    return from_json(j);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

void LlavaConfig::validate() const {
  const VisionConfig& v = vision;
  const TextConfig& t = text;
  require(
      v.hidden_size > 0 && v.num_attention_heads > 0 && v.hidden_size % v.num_attention_heads == 0,
      "vision_config.hidden_size must be a positive multiple of num_attention_heads");
  require(v.patch_size > 0 && v.image_size > 0 && v.image_size % v.patch_size == 0,
          "vision_config.image_size must be a positive multiple of patch_size");
  require(v.num_hidden_layers > 0 && v.intermediate_size > 0,
          "vision_config sizes must be positive");
  require(t.hidden_size > 0 && t.num_attention_heads > 0 && t.num_key_value_heads > 0 &&
              t.head_dim > 0 && t.num_attention_heads % t.num_key_value_heads == 0,
          "text_config: num_attention_heads must be a multiple of num_key_value_heads");
  require(t.head_dim % 2 == 0, "text_config.head_dim must be even (rotary embeddings)");
  require(t.vocab_size > 0 && t.num_hidden_layers > 0 && t.intermediate_size > 0,
          "text_config sizes must be positive");
  int L = int(v.num_hidden_layers);
  require(vision_feature_layer >= -L - 1 && vision_feature_layer <= L,
          "vision_feature_layer " + std::to_string(vision_feature_layer) + " out of range for " +
              std::to_string(L) + " vision layers");
  require(vision_feature_select_strategy == "default" || vision_feature_select_strategy == "full",
          "vision_feature_select_strategy must be \"default\" or \"full\"");
  require(projector_hidden_act == "gelu" || projector_hidden_act == "gelu_pytorch_tanh" ||
              projector_hidden_act == "relu" || projector_hidden_act == "silu",
          "projector_hidden_act \"" + projector_hidden_act +
              "\" is not supported (gelu, gelu_pytorch_tanh, relu, silu)");
  require(v.hidden_act == "quick_gelu" || v.hidden_act == "gelu",
          "vision_config.hidden_act \"" + v.hidden_act + "\" is not supported (quick_gelu, gelu)");
  require(t.hidden_act == "silu",
          "text_config.hidden_act \"" + t.hidden_act + "\" is not supported (silu)");
}

int LlavaConfig::num_image_tokens() const {
  return int(vision.num_patches()) + (vision_feature_select_strategy == "full" ? 1 : 0);
}

LlavaConfig preset_config(const std::string& name, int64_t vocab_size) {
  LlavaConfig c;
  if (name == "tiny") {
    c.vision = VisionConfig{};
    c.vision.hidden_size = 64;
    c.vision.intermediate_size = 128;
    c.vision.num_hidden_layers = 2;
    c.vision.num_attention_heads = 4;
    c.vision.image_size = 64;
    c.vision.patch_size = 8;  // 64 patches
    c.vision.projection_dim = 64;
    c.text.hidden_size = 128;
    c.text.intermediate_size = 344;
    c.text.num_hidden_layers = 4;
    c.text.num_attention_heads = 4;
    c.text.num_key_value_heads = 2;  // exercises grouped-query attention
    c.text.max_position_embeddings = 512;
  } else if (name == "small") {
    c.vision.hidden_size = 192;
    c.vision.intermediate_size = 768;
    c.vision.num_hidden_layers = 4;
    c.vision.num_attention_heads = 6;
    c.vision.image_size = 112;
    c.vision.patch_size = 14;  // 64 patches
    c.vision.projection_dim = 192;
    c.text.hidden_size = 384;
    c.text.intermediate_size = 1024;
    c.text.num_hidden_layers = 8;
    c.text.num_attention_heads = 6;
    c.text.num_key_value_heads = 2;
    c.text.max_position_embeddings = 1024;
  } else {
    throw std::runtime_error("unknown model preset '" + name + "' (known: tiny, small)");
  }
  c.text.vocab_size = vocab_size;
  c.text.head_dim = c.text.hidden_size / c.text.num_attention_heads;
  c.text.rms_norm_eps = 1e-5;
  c.image_token_index = vocab_size;  // outside the text vocabulary, as llava-hf does
  c.validate();
  return c;
}

}  // namespace sweep::model
