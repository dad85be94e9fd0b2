// An estimate of one job's peak memory on its device, from the base model's config.json and the
// job's training parameters alone (no tensors), so that `sweep plan` can flag a job that will not
// fit its slot before anything runs, and a worker that runs out of memory can say what it was
// expected to need. LibTorch-free: both programs link it.
//
// The estimate is an upper bound for one training step at the worst sequence length
// (model_max_length, never past the model's max_position_embeddings): every sample of a
// micro-batch padded to it. Real batches are usually shorter, so a job estimated to fit fits;
// one estimated not to fit may still fit when its samples are short (docs/running.md, "Memory").
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "protocol/train_params.h"

namespace sweep {

// The shapes that decide memory, read from a LLaVA config.json (text_config, vision_config).
struct ModelShape {
  // language model (LLaMA)
  int64_t hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int64_t vocab = 0, max_positions = 0;
  bool tied_embeddings = false;
  // vision tower (CLIP ViT)
  int64_t vision_hidden = 0, vision_intermediate = 0, vision_layers = 0, vision_heads = 0;
  int64_t image_size = 0, patch_size = 0, channels = 3;

  // Throws Failure (kUser) naming `what` (the file) and the missing or malformed key.
  static ModelShape from_config(const nlohmann::json& config, const std::string& what);
  int64_t image_tokens() const;  // patches per image (the CLS token is dropped)
};

// Parameter counts, for the estimate and for people reading it.
struct ParamCounts {
  int64_t language = 0, vision = 0, projector = 0;
  int64_t adapters = 0;   // LoRA A and B matrices (0 in full mode)
  int64_t trainable = 0;  // adapters, the projector when trained; all but the vision tower in full
  int64_t total() const { return language + vision + projector; }
};
ParamCounts count_params(const ModelShape& shape, const TrainParams& params);

struct MemoryEstimate {
  int64_t weights = 0;          // the frozen base at its precision
  int64_t trainable = 0;        // trainable weights, gradients and AdamW's two moments, all fp32
  int64_t activations = 0;      // saved for backward across the layers (less with checkpointing)
  int64_t logits = 0;           // the LM head's fp32 logits, their log-softmax and gradient
  int64_t runtime = 0;          // the process itself: LibTorch, BLAS buffers, or the CUDA context
  int64_t sequence_length = 0;  // the length the activations were sized for
  int64_t total() const { return weights + trainable + activations + logits + runtime; }
};

// `device`: "cpu" or "cuda" (decides precision "auto" and the runtime overhead).
MemoryEstimate estimate_memory(const ModelShape& shape, const TrainParams& params,
                               const std::string& device);

// "1.23 GiB", "456 MiB".
std::string format_bytes(int64_t bytes);
// One line for a person: "~1.2 GiB (weights 400 MiB, trainable 20 MiB, activations ...)".
std::string describe_estimate(const MemoryEstimate& estimate);

}  // namespace sweep
