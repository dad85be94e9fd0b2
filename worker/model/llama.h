// LLaMA decoder (transformers' LlamaForCausalLM) registered under its Hugging Face names:
// `model.embed_tokens`, `model.layers.N.{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj,
// input_layernorm, post_attention_layernorm}`, `model.norm`, `lm_head`.
// Math names: B batch, T new tokens, S cached+new tokens, H hidden, nh/nkv heads, hd head dim.
#pragma once

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "worker/model/llava_config.h"
#include "worker/model/lora_linear.h"

namespace sweep::model {

// Keys and values of every layer for incremental decoding: k[i], v[i] are [B, nkv, S, hd].
struct KvCache {
  std::vector<torch::Tensor> k, v;
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
};

class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t hidden, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // fp32 inside, result in x's dtype
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RmsNorm);

// Rotary position embedding helpers (HF LlamaRotaryEmbedding / apply_rotary_pos_emb).
torch::Tensor rotate_half(const torch::Tensor& x);
// cos, sin: [B, T, hd] for position_ids [B, T], in fp32.
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& position_ids,
                                                     int64_t head_dim, double theta);

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  explicit LlamaAttentionImpl(const TextConfig& c);
  // x [B,T,H]; cos/sin [B,T,hd]; key_mask [B,S] bool (true = attend) or undefined.
  // With a cache (k_cache/v_cache non-null) the new keys/values are appended to them.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& key_mask, torch::Tensor* k_cache,
                        torch::Tensor* v_cache);
  // The attention output (N, H) at flat rows (b * T + t) only (o_proj at those rows); no cache,
  // key_mask as in forward.
  torch::Tensor forward_rows(const torch::Tensor& x, const torch::Tensor& cos,
                             const torch::Tensor& sin, const torch::Tensor& key_mask,
                             const torch::Tensor& rows);
  // Pre-softmax attention scores [B, nh, T, S] (scaled, unmasked); for tests of RoPE.
  torch::Tensor scores(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  // forward before o_proj: [B, T, nh * hd].
  torch::Tensor attend(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                       const torch::Tensor& key_mask, torch::Tensor* k_cache,
                       torch::Tensor* v_cache);
  int64_t heads_, kv_heads_, head_dim_;
};
TORCH_MODULE(LlamaAttention);

class LlamaMlpImpl : public torch::nn::Module {
 public:
  explicit LlamaMlpImpl(const TextConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate x) * up x)
  LoraLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMlp);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit LlamaDecoderLayerImpl(const TextConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& key_mask, torch::Tensor* k_cache,
                        torch::Tensor* v_cache);
  // The layer's output (N, H) at flat rows (b * T + t) of x [B,T,H] only (forward, then gather).
  torch::Tensor forward_rows(const torch::Tensor& x, const torch::Tensor& cos,
                             const torch::Tensor& sin, const torch::Tensor& key_mask,
                             const torch::Tensor& rows);
  LlamaAttention self_attn{nullptr};
  LlamaMlp mlp{nullptr};
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

class LlamaModelImpl : public torch::nn::Module {
 public:
  explicit LlamaModelImpl(const TextConfig& c);
  // inputs_embeds [B,T,H]; position_ids [B,T]; attention_mask [B,S] bool over cached+new tokens
  // (undefined = all valid). Causal. Returns the final-norm hidden states [B,T,H].
  torch::Tensor forward(const torch::Tensor& inputs_embeds, const torch::Tensor& position_ids,
                        const torch::Tensor& attention_mask, KvCache* cache = nullptr);
  // forward(...).reshape({B*T, H}).index_select(0, rows) -> [N,H], without the rest: the last
  // layer and the final norm run only at `rows` (N flat indices b * T + t). No cache.
  torch::Tensor forward_rows(const torch::Tensor& inputs_embeds, const torch::Tensor& position_ids,
                             const torch::Tensor& attention_mask, const torch::Tensor& rows);
  // On: in training mode with grad mode on and no cache, each decoder layer's activations are
  // recomputed in backward instead of kept (activation_checkpoint.h); in forward_rows the last
  // layer, run at `rows` only, is not. Same results, about one extra forward per step.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }
  // Generators besides the default ones that a checkpointed layer draws from (the LoRA adapters'
  // dropout generators): saved at the forward and replayed by the recomputation.
  void set_dropout_generators(std::vector<at::Generator> g) { dropout_generators_ = std::move(g); }
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RmsNorm norm{nullptr};

 private:
  // Layer i without a cache, checkpointed when gradient checkpointing is on and training.
  torch::Tensor layer_forward(size_t i, const torch::Tensor& x, const torch::Tensor& cos,
                              const torch::Tensor& sin, const torch::Tensor& key_mask);
  TextConfig config_;
  bool gradient_checkpointing_ = false;
  std::vector<at::Generator> dropout_generators_;
};
TORCH_MODULE(LlamaModel);

class LlamaForCausalLMImpl : public torch::nn::Module {
 public:
  explicit LlamaForCausalLMImpl(const TextConfig& c);
  torch::Tensor forward(const torch::Tensor& inputs_embeds, const torch::Tensor& position_ids,
                        const torch::Tensor& attention_mask, KvCache* cache = nullptr);  // logits
  // Logits [N,V] at flat rows (b * T + t) only, as model->forward_rows then lm_head.
  torch::Tensor forward_rows(const torch::Tensor& inputs_embeds, const torch::Tensor& position_ids,
                             const torch::Tensor& attention_mask, const torch::Tensor& rows);
  LlamaModel model{nullptr};
  LoraLinear lm_head{nullptr};
};
TORCH_MODULE(LlamaForCausalLM);

}  // namespace sweep::model
