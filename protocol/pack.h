// Packing: one worker process trains several jobs at once over one frozen base model
// (docs/worker-protocol.md, "Packed jobs"). Jobs may share a process only when everything the
// frozen model, the data pipeline and the forward pass depend on is equal; what each adapter owns
// (its rank, scale, optimiser, schedule, seed, run length, evaluation cadence) may differ.
// Both the orchestrator (to group jobs) and the worker (to check its arguments) use these.
// LibTorch-free.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "protocol/job_file.h"

namespace sweep {

// What must be equal for two jobs to share a worker process: base_model, train_data, val_data,
// image_folder, device, threads, feature_cache and, under "params", every resolved training
// parameter except the adapter-local ones (lora_r, lora_alpha, lora_dropout, use_rslora,
// rank_pattern, alpha_pattern, learning_rate, mm_projector_lr, batch_size,
// gradient_accumulation_steps, lr_scheduler, warmup_ratio, warmup_steps, weight_decay,
// adam_beta1, adam_beta2, adam_epsilon, max_grad_norm, seed, max_steps, eval_every,
// eval_samples, max_new_tokens, logging_steps, save_top_k). Params are resolved through
// TrainParams first, so a default written out and a default left out compare equal.
// Throws Failure (kUser) when job.params is not valid (as TrainParams::from_json does).
nlohmann::json pack_key(const JobFile& job);

// False for jobs that always run alone: mode full (every language-model weight is trained, so
// there is no shared frozen base) and lora_vision_tower (adapters inside the shared vision tower).
bool packable(const JobFile& job);

// nullopt when pack_key(a) == pack_key(b); otherwise one line naming the first differing key and
// both values, e.g. "param 'model_max_length' differs: 2048 vs 512". Says nothing about
// packable(): check that separately.
std::optional<std::string> pack_mismatch(const JobFile& a, const JobFile& b);

// True when the training parameter `name` belongs to one adapter and may differ within a pack.
bool is_adapter_local_param(const std::string& name);

}  // namespace sweep
