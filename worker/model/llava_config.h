// LLaVA model configuration as found in a Hugging Face `config.json` (LlavaConfig with nested
// CLIPVisionConfig and LlamaConfig). Fields missing from the file take the Hugging Face defaults,
// so LLaVA-1.5-7B and the tiny test model are read by the same code. LibTorch-free.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace sweep::model {

// CLIPVisionConfig. Defaults are transformers' CLIPVisionConfig defaults.
struct VisionConfig {
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 32;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";
  int64_t projection_dim = 512;  // kept for round trips; LLaVA does not use the projection

  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// LlamaConfig. Defaults are transformers' LlamaConfig defaults (LLaMA-7B shapes).
struct TextConfig {
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;  // = num_attention_heads when the file omits it
  int64_t head_dim = 128;            // = hidden_size / num_attention_heads when omitted
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::string hidden_act = "silu";
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  int64_t pad_token_id = 0;
};

struct LlavaConfig {
  VisionConfig vision;
  TextConfig text;
  int64_t image_token_index = 32000;  // llava-hf's in-vocab id; our splice uses kImageTokenIndex
  std::string projector_hidden_act = "gelu";
  int vision_feature_layer = -2;
  std::string vision_feature_select_strategy = "default";  // "default" drops CLS, "full" keeps it

  // Throws std::runtime_error naming the bad key on wrong types or inconsistent sizes.
  static LlavaConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  // Reads `<model_dir>/config.json`; the error names the file.
  static LlavaConfig load(const std::string& model_dir);
  // Reads a config.json file by its path.
  static LlavaConfig load_file(const std::string& path);
  // Throws when sizes are inconsistent (heads not dividing hidden, feature layer out of range,
  // ...).
  void validate() const;

  // Image tokens each image expands to (num_patches, +1 with strategy "full").
  int num_image_tokens() const;
  int image_size() const { return static_cast<int>(vision.image_size); }
};

// "tiny" (test and demo base model, trains on 2 CPU cores) or "small" (~20M params, benchmarks).
// Throws on an unknown name, listing the known ones.
LlavaConfig preset_config(const std::string& name, int64_t vocab_size = 512);

}  // namespace sweep::model
