#include "protocol/memory_estimate.h"

#include <algorithm>
#include <cstdio>

#include "common/failure.h"

namespace sweep {

namespace {

using json = nlohmann::json;

constexpr int64_t kMiB = int64_t{1} << 20;
// Resident size of a worker before its first tensor: LibTorch, OpenBLAS's per-thread buffers and
// the tokenizer (measured: 250-270 MiB for a job on the tiny demo model).
constexpr int64_t kCpuRuntime = 300 * kMiB;
// A CUDA context and LibTorch's kernels on the device.
constexpr int64_t kCudaRuntime = 600 * kMiB;

int64_t positive(const json& section, const char* key, const std::string& what,
                 const std::string& path) {
  auto it = section.find(key);
  if (it == section.end() || !it->is_number_integer() || it->get<int64_t>() <= 0) {
    fail(ErrorKind::kUser, what + ": " + path + "." + key + " must be a positive integer",
         "the model directory's config.json is a Hugging Face LlavaForConditionalGeneration "
         "config (docs/model.md)");
  }
  return it->get<int64_t>();
}

int64_t optional_int(const json& section, const char* key, int64_t fallback) {
  auto it = section.find(key);
  return it != section.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

const json& section_of(const json& config, const char* key, const std::string& what) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_object()) {
    fail(ErrorKind::kUser, what + ": no \"" + std::string(key) + "\" object",
         "the model directory's config.json is a Hugging Face LlavaForConditionalGeneration "
         "config (docs/model.md)");
  }
  return *it;
}

bool targets(const TrainParams& p, const char* module) {
  return std::find(p.target_modules.begin(), p.target_modules.end(), module) !=
         p.target_modules.end();
}

// LoRA A (r x in) and B (out x r) of a module with `in` inputs and `out` outputs.
int64_t lora_params(int64_t r, int64_t in, int64_t out) { return r * (in + out); }

int64_t weight_bytes(const TrainParams& p, const std::string& device) {
  if (p.precision == "bf16") return 2;
  if (p.precision == "fp32") return 4;
  // auto: bf16 on CUDA; a CPU may run it in bf16 too (AVX512-BF16, decided by the worker), so
  // fp32 there is an upper bound.
  return device == "cuda" ? 2 : 4;
}

}  // namespace

ModelShape ModelShape::from_config(const json& config, const std::string& what) {
  const json& text = section_of(config, "text_config", what);
  const json& vision = section_of(config, "vision_config", what);
  ModelShape s;
  s.hidden = positive(text, "hidden_size", what, "text_config");
  s.intermediate = positive(text, "intermediate_size", what, "text_config");
  s.layers = positive(text, "num_hidden_layers", what, "text_config");
  s.heads = positive(text, "num_attention_heads", what, "text_config");
  s.kv_heads = optional_int(text, "num_key_value_heads", s.heads);
  s.head_dim = optional_int(text, "head_dim", s.hidden / s.heads);
  s.vocab = positive(text, "vocab_size", what, "text_config");
  s.max_positions = optional_int(text, "max_position_embeddings", 2048);
  s.tied_embeddings = text.value("tie_word_embeddings", false);
  s.vision_hidden = positive(vision, "hidden_size", what, "vision_config");
  s.vision_intermediate = positive(vision, "intermediate_size", what, "vision_config");
  s.vision_layers = positive(vision, "num_hidden_layers", what, "vision_config");
  s.vision_heads = positive(vision, "num_attention_heads", what, "vision_config");
  s.image_size = positive(vision, "image_size", what, "vision_config");
  s.patch_size = positive(vision, "patch_size", what, "vision_config");
  s.channels = optional_int(vision, "num_channels", 3);
  return s;
}

int64_t ModelShape::image_tokens() const {
  const int64_t side = image_size / patch_size;
  return side * side;
}

ParamCounts count_params(const ModelShape& s, const TrainParams& p) {
  ParamCounts c;
  const int64_t h = s.hidden, q_out = s.heads * s.head_dim, kv_out = s.kv_heads * s.head_dim;
  const int64_t layer = h * q_out + 2 * h * kv_out + q_out * h  // q, k, v, o
                        + 3 * h * s.intermediate                // gate, up, down
                        + 2 * h;                                // two RMSNorms
  c.language = s.vocab * h * (s.tied_embeddings ? 1 : 2) + s.layers * layer + h;

  const int64_t v = s.vision_hidden, vi = s.vision_intermediate;
  const int64_t vision_layer = 4 * (v * v + v) + 2 * v * vi + vi + v + 4 * v;
  c.vision = s.channels * s.patch_size * s.patch_size * v  // patch embedding
             + v + (s.image_tokens() + 1) * v              // CLS and positions
             + 4 * v                                       // pre- and post-LayerNorm
             + s.vision_layers * vision_layer;
  c.projector = v * h + h + h * h + h;  // mlp2x_gelu

  if (p.mode == "full") {
    c.trainable = c.language + c.projector;
    return c;
  }
  const int64_t r = p.lora_r;
  int64_t per_layer = 0;
  if (targets(p, "q_proj")) per_layer += lora_params(r, h, q_out);
  if (targets(p, "k_proj")) per_layer += lora_params(r, h, kv_out);
  if (targets(p, "v_proj")) per_layer += lora_params(r, h, kv_out);
  if (targets(p, "o_proj")) per_layer += lora_params(r, q_out, h);
  if (targets(p, "gate_proj")) per_layer += lora_params(r, h, s.intermediate);
  if (targets(p, "up_proj")) per_layer += lora_params(r, h, s.intermediate);
  if (targets(p, "down_proj")) per_layer += lora_params(r, s.intermediate, h);
  c.adapters = s.layers * per_layer;
  if (p.lora_vision_tower) {
    int64_t vision_per_layer = 0;
    for (const char* m : {"q_proj", "k_proj", "v_proj"})
      if (targets(p, m)) vision_per_layer += lora_params(r, v, v);
    c.adapters += s.vision_layers * vision_per_layer;
  }
  c.trainable = c.adapters + (p.train_projector ? c.projector : 0);
  return c;
}

MemoryEstimate estimate_memory(const ModelShape& s, const TrainParams& p,
                               const std::string& device) {
  MemoryEstimate e;
  const ParamCounts c = count_params(s, p);
  const int64_t wbytes = weight_bytes(p, device);
  const bool full = p.mode == "full";
  // Trainable parameters live in fp32 beside their gradient and AdamW's two moments.
  e.weights = (c.total() - (full ? c.trainable : (p.train_projector ? c.projector : 0))) * wbytes;
  e.trainable = c.trainable * 16;

  // Activations are computed in the weights' precision.
  const int64_t abytes = wbytes;
  e.sequence_length = std::min<int64_t>(p.model_max_length, s.max_positions);
  const int64_t tokens = int64_t{p.batch_size} * e.sequence_length;
  const int64_t h = s.hidden, i = s.intermediate;
  // What one decoder layer keeps for backward, per token: the inputs of the two norms and of the
  // q/k/v, o and gate/up/down projections, q, k and v themselves, SiLU's input and output, the
  // gated product (about 8h + 4i), the attention probabilities of the explicit path (heads x
  // sequence), and with LoRA the dropout-masked input of each adapted module (about 7h).
  int64_t per_token = 8 * h + 4 * i + s.heads * e.sequence_length + (full ? 0 : 7 * h);
  int64_t layer_bytes = tokens * per_token * abytes;
  if (p.gradient_checkpointing) {
    // Only each layer's input stays; one layer's activations are rebuilt at a time.
    e.activations = s.layers * tokens * h * abytes + layer_bytes;
  } else {
    e.activations = s.layers * layer_bytes;
  }
  // The frozen vision tower runs without gradients: one layer's working set per image.
  const int64_t patches = s.image_tokens() + 1;
  e.activations += int64_t{p.batch_size} * patches *
                   (4 * s.vision_hidden + s.vision_intermediate + s.vision_heads * patches) *
                   abytes;
  // The LM head's logits in fp32, their log-softmax, and the gradient of the logits.
  e.logits = 3 * tokens * s.vocab * 4;
  e.runtime = device == "cuda" ? kCudaRuntime : kCpuRuntime;
  return e;
}

std::string format_bytes(int64_t bytes) {
  char buf[32];
  const double gib = static_cast<double>(bytes) / (1 << 30);
  if (gib >= 1) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", gib);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(bytes) / kMiB);
  }
  return buf;
}

std::string describe_estimate(const MemoryEstimate& e) {
  return "~" + format_bytes(e.total()) + " (weights " + format_bytes(e.weights) +
         ", trainable+optimizer " + format_bytes(e.trainable) + ", activations " +
         format_bytes(e.activations) + ", logits " + format_bytes(e.logits) + ", runtime " +
         format_bytes(e.runtime) + "; sequences of " + std::to_string(e.sequence_length) +
         " tokens)";
}

}  // namespace sweep
