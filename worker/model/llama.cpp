// Shapes: B batch, T new tokens, S = cached + new tokens, H hidden, nh query heads, nkv key/value
// heads, hd head dim, V vocab, N gathered rows (flat b * T + t).
#include "worker/model/llama.h"

#include <cmath>
#include <limits>

#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/functional/activation.h>

#include "worker/model/activation_checkpoint.h"
#include "worker/model/fused_attention.h"
#include "worker/model/parameter_placement.h"

namespace sweep::model {
#if SWEEP_HAVE_FUSED_ATTENTION
namespace {

// Added to the score of a key a query must not see, in the fused-attention path: far below any
// real score yet finite in bf16 and fp32 (a row that sees no key then stays finite, not NaN).
constexpr double kMaskedScore = -1e30;

}  // namespace
#endif

RmsNormImpl::RmsNormImpl(int64_t hidden, double eps) : eps_(eps) {
  weight = register_parameter("weight", new_parameter({hidden}));
  if (drawing_parameters()) {
    torch::NoGradGuard no_grad;
    weight.fill_(1.0);
  }
}

namespace {

// HF LlamaRMSNorm as one autograd node: n = x / rms(x) in fp32 (double stays double), cast back
// to x's dtype, then times the weight. The composite is eight operators and as many backward
// nodes, nine times per forward; here the backward is the closed form
// dx = r * (dn - n * mean(dn * n)), with r = 1 / rms(x) and dn the gradient of n.
class RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, double eps) {
    const auto dtype = x.scalar_type();
    const torch::Tensor h = dtype == torch::kFloat64 ? x : x.to(torch::kFloat32);
    torch::Tensor r = torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
    torch::Tensor n = h * r;
    torch::Tensor cast = n.to(dtype);  // cast back, then scale
    ctx->save_for_backward({n, r, weight, cast});
    return weight * cast;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &n = saved[0], &r = saved[1], &weight = saved[2], &cast = saved[3];
    const torch::Tensor& g = grads[0];
    torch::Tensor grad_weight;
    if (ctx->needs_input_grad(1)) grad_weight = (g * cast).reshape({-1, weight.size(0)}).sum(0);
    torch::Tensor dn = (g * weight).to(n.scalar_type());
    torch::Tensor dx = r * (dn - n * (dn * n).mean(-1, /*keepdim=*/true));
    return {dx.to(cast.scalar_type()), grad_weight, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  return RmsNormFunction::apply(x, weight, eps_);
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  return torch::cat({-x2, x1}, -1);
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& position_ids,
                                                     int64_t head_dim, double theta) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(position_ids.device());
  auto i = torch::arange(0, head_dim, 2, opts);
  auto inv_freq = torch::pow(theta, i / double(head_dim)).reciprocal();    // [hd/2]
  auto freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // [B,T,hd/2]
  auto emb = torch::cat({freqs, freqs}, -1);                               // [B,T,hd]
  return {emb.cos(), emb.sin()};
}

namespace {

// rotate_half's transpose: the gradient of sum(g * rotate_half(x)) for x is cat(g2, -g1).
torch::Tensor rotate_half_transposed(const torch::Tensor& g) {
  int64_t half = g.size(-1) / 2;
  return torch::cat({g.narrow(-1, half, half), -g.narrow(-1, 0, half)}, -1);
}

// x * cos + rotate_half(x) * sin as one autograd node: the composite's backward takes rotate_half
// apart with two slice backwards, each a zero-filled tensor of x's size, per query and key
// projection of every layer. cos and sin need no gradient.
class Rope : public torch::autograd::Function<Rope> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return x * cos + rotate_half(x) * sin;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& g = grads[0];
    return {g * saved[0] + rotate_half_transposed(g * saved[1]), torch::Tensor(), torch::Tensor()};
  }
};

// q or k [B,n,T,hd] with cos/sin [B,T,hd].
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin) {
  auto c = cos.unsqueeze(1).to(x.scalar_type());
  auto s = sin.unsqueeze(1).to(x.scalar_type());
  return Rope::apply(x, c, s);
}

// [B,nkv,S,hd] -> [B,nh,S,hd] (HF repeat_kv).
torch::Tensor repeat_kv(const torch::Tensor& x, int64_t groups) {
  if (groups == 1) return x;
  return x.repeat_interleave(groups, /*dim=*/1);
}

}  // namespace

LlamaAttentionImpl::LlamaAttentionImpl(const TextConfig& c)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
  int64_t H = c.hidden_size;
  q_proj = register_module("q_proj", LoraLinear(H, heads_ * head_dim_, /*bias=*/false));
  k_proj = register_module("k_proj", LoraLinear(H, kv_heads_ * head_dim_, /*bias=*/false));
  v_proj = register_module("v_proj", LoraLinear(H, kv_heads_ * head_dim_, /*bias=*/false));
  o_proj = register_module("o_proj", LoraLinear(heads_ * head_dim_, H, /*bias=*/false));
}

torch::Tensor LlamaAttentionImpl::scores(const torch::Tensor& x, const torch::Tensor& cos,
                                         const torch::Tensor& sin) {
  int64_t B = x.size(0), T = x.size(1);
  auto q = apply_rope(q_proj->forward(x).view({B, T, heads_, head_dim_}).transpose(1, 2), cos, sin);
  auto k =
      apply_rope(k_proj->forward(x).view({B, T, kv_heads_, head_dim_}).transpose(1, 2), cos, sin);
  k = repeat_kv(k, heads_ / kv_heads_);
  return torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(head_dim_));  // [B,nh,T,T]
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                          const torch::Tensor& sin, const torch::Tensor& key_mask,
                                          torch::Tensor* k_cache, torch::Tensor* v_cache) {
  return o_proj->forward(attend(x, cos, sin, key_mask, k_cache, v_cache));
}

torch::Tensor LlamaAttentionImpl::attend(const torch::Tensor& x, const torch::Tensor& cos,
                                         const torch::Tensor& sin, const torch::Tensor& key_mask,
                                         torch::Tensor* k_cache, torch::Tensor* v_cache) {
  int64_t B = x.size(0), T = x.size(1);
  auto q = apply_rope(q_proj->forward(x).view({B, T, heads_, head_dim_}).transpose(1, 2), cos, sin);
  auto k =
      apply_rope(k_proj->forward(x).view({B, T, kv_heads_, head_dim_}).transpose(1, 2), cos, sin);
  auto v = v_proj->forward(x).view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // [B,nkv,T,hd]
  if (k_cache) {
    if (k_cache->defined()) {
      k = torch::cat({*k_cache, k}, 2);
      v = torch::cat({*v_cache, v}, 2);
    }
    *k_cache = k;
    *v_cache = v;
  }
  const int64_t S = k.size(2), past = S - T, groups = heads_ / kv_heads_;
  // Query t (absolute position past+t) sees keys 0..past+t, and only real (unpadded) keys.
  auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(x.device());
  auto allowed = torch::ones({T, S}, bool_opts).tril(past).view({1, 1, 1, T, S});
  if (key_mask.defined()) allowed = allowed.logical_and(key_mask.view({B, 1, 1, 1, S}));
  const double scale = 1.0 / std::sqrt(double(head_dim_));
  torch::Tensor out;  // [B,nh,T,hd]
#if SWEEP_HAVE_FUSED_ATTENTION
  if (q.scalar_type() != torch::kFloat64 && fused_attention_enabled()) {
    // Fused kernels (memory-efficient on CUDA, flash on the CPU): no [B,nh,T,S] score tensor.
    // An additive mask with a large finite negative keeps a row with no visible key finite.
    auto bias = torch::zeros(allowed.sizes(), q.options())
                    .masked_fill_(allowed.logical_not(), kMaskedScore)
                    .view({allowed.size(0), 1, T, S});
    out = at::scaled_dot_product_attention(q, repeat_kv(k, groups), repeat_kv(v, groups), bias,
                                           /*dropout_p=*/0.0, /*is_causal=*/false, scale);
  }
#endif
  if (!out.defined()) {
    // Query head h reads key head h / groups (HF repeat_kv). The query heads of one key head are
    // adjacent, so [B,nh,T,hd] viewed as [B,nkv,groups*T,hd] multiplies each key head's keys and
    // values once for its whole group: no copy of the keys and values per query head, and a
    // batch of B*nkv matrix products instead of B*nh (LibTorch's CPU bmm loops over the batch).
    auto qg = q.reshape({B, kv_heads_, groups * T, head_dim_});
    auto scores = torch::matmul(qg, k.transpose(-1, -2));  // [B,nkv,groups*T,S]
    if (q.scalar_type() != torch::kFloat64) scores = scores.to(torch::kFloat32);
    // scale * scores + mask in one operator, the mask 0 where a key is visible and the lowest
    // finite float (as HF fills it) where not: lowest + a score rounds to lowest, so this equals
    // masking after scaling, and a row with no visible key stays finite instead of NaN. Unlike
    // masked_fill, the backward is one multiply (softmax already gives a hidden key's score a
    // zero gradient, since its probability is exactly 0).
    auto mask = torch::zeros(allowed.sizes(), scores.options())
                    .masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest());
    scores = torch::add(mask, scores.view({B, kv_heads_, groups, T, S}), scale);
    auto probs = torch::softmax(scores, -1).to(q.scalar_type()).view({B, kv_heads_, groups * T, S});
    out = torch::matmul(probs, v).view({B, heads_, T, head_dim_});
  }
  return out.transpose(1, 2).reshape({B, T, heads_ * head_dim_});
}

torch::Tensor LlamaAttentionImpl::forward_rows(const torch::Tensor& x, const torch::Tensor& cos,
                                               const torch::Tensor& sin,
                                               const torch::Tensor& key_mask,
                                               const torch::Tensor& rows) {
  // Attention over every position (it is a small part of the layer), then o_proj at `rows`
  // only. Queries at `rows` alone would need one tiny matrix product per row and key head, and
  // LibTorch's CPU bmm runs those one by one: slower than the whole attention.
  const int64_t B = x.size(0), T = x.size(1);
  auto out = attend(x, cos, sin, key_mask, nullptr, nullptr);              // [B,T,nh*hd]
  return o_proj->forward(out.reshape({B * T, -1}).index_select(0, rows));  // [N,H]
}

LlamaMlpImpl::LlamaMlpImpl(const TextConfig& c) {
  gate_proj = register_module("gate_proj", LoraLinear(c.hidden_size, c.intermediate_size, false));
  up_proj = register_module("up_proj", LoraLinear(c.hidden_size, c.intermediate_size, false));
  down_proj = register_module("down_proj", LoraLinear(c.intermediate_size, c.hidden_size, false));
}

namespace {

// silu(gate) * up as one autograd node. The silu and its backward run in fp32 (double stays
// double) and are cast to the input's dtype: LibTorch's bf16 CPU silu_backward is about three
// times slower than the fp32 one with both casts. In fp32 this is the composite's arithmetic
// exactly (the same silu and silu_backward kernels, the same products).
class SwiGlu : public torch::autograd::Function<SwiGlu> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& gate,
                               const torch::Tensor& up) {
    const torch::Tensor act = torch::silu(in_compute_dtype(gate)).to(gate.scalar_type());
    ctx->save_for_backward({gate, up, act});
    return act * up;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &gate = saved[0], &up = saved[1], &act = saved[2];
    const torch::Tensor& g = grads[0];
    torch::Tensor grad_gate =
        at::silu_backward(in_compute_dtype(g * up), in_compute_dtype(gate)).to(gate.scalar_type());
    return {grad_gate, g * act};
  }

 private:
  static torch::Tensor in_compute_dtype(const torch::Tensor& t) {
    return t.scalar_type() == torch::kFloat64 ? t : t.to(torch::kFloat32);
  }
};

}  // namespace

torch::Tensor LlamaMlpImpl::forward(const torch::Tensor& x) {
  return down_proj->forward(SwiGlu::apply(gate_proj->forward(x), up_proj->forward(x)));
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const TextConfig& c) {
  self_attn = register_module("self_attn", LlamaAttention(c));
  mlp = register_module("mlp", LlamaMlp(c));
  input_layernorm = register_module("input_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                             const torch::Tensor& sin,
                                             const torch::Tensor& key_mask, torch::Tensor* k_cache,
                                             torch::Tensor* v_cache) {
  auto h =
      x + self_attn->forward(input_layernorm->forward(x), cos, sin, key_mask, k_cache, v_cache);
  return h + mlp->forward(post_attention_layernorm->forward(h));
}

torch::Tensor LlamaDecoderLayerImpl::forward_rows(const torch::Tensor& x, const torch::Tensor& cos,
                                                  const torch::Tensor& sin,
                                                  const torch::Tensor& key_mask,
                                                  const torch::Tensor& rows) {
  auto x_rows = x.reshape({-1, x.size(2)}).index_select(0, rows);  // [N,H]
  auto h = x_rows + self_attn->forward_rows(input_layernorm->forward(x), cos, sin, key_mask, rows);
  return h + mlp->forward(post_attention_layernorm->forward(h));  // [N,H]
}

LlamaModelImpl::LlamaModelImpl(const TextConfig& c) : config_(c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(LlamaDecoderLayer(c));
  norm = register_module("norm", RmsNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor LlamaModelImpl::forward(const torch::Tensor& inputs_embeds,
                                      const torch::Tensor& position_ids,
                                      const torch::Tensor& attention_mask, KvCache* cache) {
  auto [cos, sin] = rope_cos_sin(position_ids, config_.head_dim, config_.rope_theta);
  if (cache && cache->k.empty()) {
    cache->k.resize(layers->size());
    cache->v.resize(layers->size());
  }
  auto x = inputs_embeds;  // [B,T,H]
  for (size_t i = 0; i < layers->size(); ++i) {
    if (!cache) {
      x = layer_forward(i, x, cos, sin, attention_mask);
      continue;
    }
    auto layer = (*layers)[i]->as<LlamaDecoderLayer>();
    x = layer->forward(x, cos, sin, attention_mask, &cache->k[i], &cache->v[i]);
  }
  return norm->forward(x);
}

torch::Tensor LlamaModelImpl::forward_rows(const torch::Tensor& inputs_embeds,
                                           const torch::Tensor& position_ids,
                                           const torch::Tensor& attention_mask,
                                           const torch::Tensor& rows) {
  auto [cos, sin] = rope_cos_sin(position_ids, config_.head_dim, config_.rope_theta);
  const size_t L = layers->size();
  auto x = inputs_embeds;  // [B,T,H]
  for (size_t i = 0; i + 1 < L; ++i) x = layer_forward(i, x, cos, sin, attention_mask);
  if (L == 0) return norm->forward(x.reshape({-1, x.size(2)}).index_select(0, rows));
  // The last layer stays outside the checkpoint: it runs at `rows` only, so its activations are
  // small, and backward starts with it, so recomputing it would only add work.
  auto last = (*layers)[L - 1]->as<LlamaDecoderLayer>();
  return norm->forward(last->forward_rows(x, cos, sin, attention_mask, rows));  // [N,H]
}

torch::Tensor LlamaModelImpl::layer_forward(size_t i, const torch::Tensor& x,
                                            const torch::Tensor& cos, const torch::Tensor& sin,
                                            const torch::Tensor& key_mask) {
  std::shared_ptr<LlamaDecoderLayerImpl> layer = layers->ptr<LlamaDecoderLayerImpl>(i);
  if (!gradient_checkpointing_ || !is_training())
    return layer->forward(x, cos, sin, key_mask, nullptr, nullptr);
  auto run = [layer](const torch::Tensor& h, const std::vector<torch::Tensor>& e) {
    return layer->forward(h, /*cos=*/e[0], /*sin=*/e[1], /*key_mask=*/e[2], nullptr, nullptr);
  };
  return activation_checkpoint(run, x, {cos, sin, key_mask}, dropout_generators_);
}

LlamaForCausalLMImpl::LlamaForCausalLMImpl(const TextConfig& c) {
  model = register_module("model", LlamaModel(c));
  lm_head = register_module("lm_head", LoraLinear(c.hidden_size, c.vocab_size, /*bias=*/false));
}

torch::Tensor LlamaForCausalLMImpl::forward(const torch::Tensor& inputs_embeds,
                                            const torch::Tensor& position_ids,
                                            const torch::Tensor& attention_mask, KvCache* cache) {
  return lm_head->forward(model->forward(inputs_embeds, position_ids, attention_mask, cache));
}

torch::Tensor LlamaForCausalLMImpl::forward_rows(const torch::Tensor& inputs_embeds,
                                                 const torch::Tensor& position_ids,
                                                 const torch::Tensor& attention_mask,
                                                 const torch::Tensor& rows) {
  return lm_head->forward(model->forward_rows(inputs_embeds, position_ids, attention_mask, rows));
}

}  // namespace sweep::model
