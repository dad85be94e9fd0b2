// Shapes: N images, L = P+1 tokens (CLS + patches), D vision width, nh heads, hd head dim.
#include "worker/model/clip_vision.h"

#include <cmath>
#include <stdexcept>

#include <torch/nn/functional/activation.h>

#include "worker/model/fused_attention.h"

namespace sweep::model {
namespace {

torch::Tensor vision_act(const torch::Tensor& x, const std::string& act) {
  if (act == "quick_gelu") return x * torch::sigmoid(1.702 * x);
  return torch::gelu(x);
}

torch::nn::LayerNorm layer_norm(int64_t d, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(eps));
}

}  // namespace

ClipAttentionImpl::ClipAttentionImpl(const VisionConfig& c)
    : heads_(c.num_attention_heads), head_dim_(c.head_dim()) {
  int64_t D = c.hidden_size;
  q_proj = register_module("q_proj", LoraLinear(D, D, /*bias=*/true));
  k_proj = register_module("k_proj", LoraLinear(D, D, /*bias=*/true));
  v_proj = register_module("v_proj", LoraLinear(D, D, /*bias=*/true));
  out_proj = register_module("out_proj", LoraLinear(D, D, /*bias=*/true));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x) {
  int64_t N = x.size(0), L = x.size(1);
  auto split = [&](const torch::Tensor& t) {  // [N,L,D] -> [N,nh,L,hd]
    return t.view({N, L, heads_, head_dim_}).transpose(1, 2);
  };
  auto q = split(q_proj->forward(x));
  auto k = split(k_proj->forward(x));
  auto v = split(v_proj->forward(x));
  const double scale = 1.0 / std::sqrt(double(head_dim_));
  torch::Tensor out;  // [N,nh,L,hd]
#if SWEEP_HAVE_FUSED_ATTENTION
  if (q.scalar_type() != torch::kFloat64 && fused_attention_enabled())
    out = at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                           /*is_causal=*/false, scale);
#endif
  if (!out.defined()) {
    auto scores = torch::matmul(q, k.transpose(-1, -2)) * scale;
    auto probs = torch::softmax(scores.to(torch::kFloat32), -1).to(q.scalar_type());  // [N,nh,L,L]
    out = torch::matmul(probs, v);
  }
  return out_proj->forward(out.transpose(1, 2).reshape({N, L, heads_ * head_dim_}));
}

ClipMlpImpl::ClipMlpImpl(const VisionConfig& c) : act_(c.hidden_act) {
  fc1 = register_module("fc1", LoraLinear(c.hidden_size, c.intermediate_size, /*bias=*/true));
  fc2 = register_module("fc2", LoraLinear(c.intermediate_size, c.hidden_size, /*bias=*/true));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  return fc2->forward(vision_act(fc1->forward(x), act_));
}

ClipEncoderLayerImpl::ClipEncoderLayerImpl(const VisionConfig& c) {
  self_attn = register_module("self_attn", ClipAttention(c));
  layer_norm1 = register_module("layer_norm1", layer_norm(c.hidden_size, c.layer_norm_eps));
  mlp = register_module("mlp", ClipMlp(c));
  layer_norm2 = register_module("layer_norm2", layer_norm(c.hidden_size, c.layer_norm_eps));
}

torch::Tensor ClipEncoderLayerImpl::forward(const torch::Tensor& x) {
  auto h = x + self_attn->forward(layer_norm1->forward(x));
  return h + mlp->forward(layer_norm2->forward(h));
}

ClipVisionEmbeddingsImpl::ClipVisionEmbeddingsImpl(const VisionConfig& c) {
  class_embedding = register_parameter("class_embedding", torch::randn({c.hidden_size}) * 0.02);
  patch_embedding = register_module(
      "patch_embedding",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(c.num_channels, c.hidden_size, c.patch_size)
                            .stride(c.patch_size)
                            .bias(false)));
  position_embedding = register_module("position_embedding",
                                       torch::nn::Embedding(c.num_patches() + 1, c.hidden_size));
}

torch::Tensor ClipVisionEmbeddingsImpl::forward(const torch::Tensor& pixel_values) {
  int64_t N = pixel_values.size(0);
  auto w = patch_embedding->weight;
  auto patches = patch_embedding->forward(pixel_values.to(w.scalar_type()));  // [N,D,g,g]
  patches = patches.flatten(2).transpose(1, 2);                               // [N,P,D]
  auto cls = class_embedding.to(w.scalar_type()).view({1, 1, -1}).expand({N, 1, -1});
  auto x = torch::cat({cls, patches}, 1);  // [N,L,D]
  return x + position_embedding->weight.unsqueeze(0);
}

ClipEncoderImpl::ClipEncoderImpl(const VisionConfig& c) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(ClipEncoderLayer(c));
}

ClipVisionTransformerImpl::ClipVisionTransformerImpl(const VisionConfig& c) {
  embeddings = register_module("embeddings", ClipVisionEmbeddings(c));
  pre_layrnorm = register_module("pre_layrnorm", layer_norm(c.hidden_size, c.layer_norm_eps));
  encoder = register_module("encoder", ClipEncoder(c));
  post_layernorm = register_module("post_layernorm", layer_norm(c.hidden_size, c.layer_norm_eps));
}

ClipVisionModelImpl::ClipVisionModelImpl(const VisionConfig& c) : config_(c) {
  vision_model = register_module("vision_model", ClipVisionTransformer(c));
}

torch::Tensor ClipVisionModelImpl::hidden_state(const torch::Tensor& pixel_values, int layer) {
  int64_t L = config_.num_hidden_layers;
  int64_t index = layer < 0 ? L + 1 + layer : layer;  // hidden_states has L+1 entries
  if (index < 0 || index > L)
    throw std::runtime_error("vision_feature_layer " + std::to_string(layer) + " out of range");
  auto x = vision_model->pre_layrnorm->forward(vision_model->embeddings->forward(pixel_values));
  auto& layers = *vision_model->encoder->layers;
  for (int64_t i = 0; i < index; ++i) x = layers[i]->as<ClipEncoderLayer>()->forward(x);
  return x;
}

}  // namespace sweep::model
