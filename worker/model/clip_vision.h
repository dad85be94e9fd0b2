// CLIP ViT vision tower (transformers' CLIPVisionModel), registered under its Hugging Face names:
// `vision_model.embeddings.*`, `vision_model.pre_layrnorm`, `vision_model.encoder.layers.N.*`,
// `vision_model.post_layernorm` (loaded and saved, unused by LLaVA).
#pragma once

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "worker/model/llava_config.h"
#include "worker/model/lora_linear.h"

namespace sweep::model {

class ClipAttentionImpl : public torch::nn::Module {
 public:
  explicit ClipAttentionImpl(const VisionConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // [N, L, D] -> [N, L, D], non-causal
  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_, head_dim_;
};
TORCH_MODULE(ClipAttention);

class ClipMlpImpl : public torch::nn::Module {
 public:
  explicit ClipMlpImpl(const VisionConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  LoraLinear fc1{nullptr}, fc2{nullptr};

 private:
  std::string act_;
};
TORCH_MODULE(ClipMlp);

class ClipEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderLayerImpl(const VisionConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // pre-LN: x + attn(LN1 x); x + mlp(LN2 x)
  ClipAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  ClipMlp mlp{nullptr};
};
TORCH_MODULE(ClipEncoderLayer);

class ClipVisionEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit ClipVisionEmbeddingsImpl(const VisionConfig& c);
  torch::Tensor forward(const torch::Tensor& pixel_values);  // [N,3,S,S] -> [N, P+1, D]
  torch::Tensor class_embedding;                             // [D]
  torch::nn::Conv2d patch_embedding{nullptr};                // D x 3 x p x p, stride p, no bias
  torch::nn::Embedding position_embedding{nullptr};          // [P+1, D]
};
TORCH_MODULE(ClipVisionEmbeddings);

class ClipEncoderImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderImpl(const VisionConfig& c);
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(ClipEncoder);

class ClipVisionTransformerImpl : public torch::nn::Module {
 public:
  explicit ClipVisionTransformerImpl(const VisionConfig& c);
  ClipVisionEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};  // sic: the Hugging Face name
  ClipEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(ClipVisionTransformer);

class ClipVisionModelImpl : public torch::nn::Module {
 public:
  explicit ClipVisionModelImpl(const VisionConfig& c);
  // Hidden state `layer` (Python indexing over [embeddings, layer 1, ..., layer L]; -2 = output of
  // the second-to-last encoder layer). Layers after it are not run. [N,3,S,S] -> [N, P+1, D].
  torch::Tensor hidden_state(const torch::Tensor& pixel_values, int layer);
  ClipVisionTransformer vision_model{nullptr};

 private:
  VisionConfig config_;
};
TORCH_MODULE(ClipVisionModel);

}  // namespace sweep::model
