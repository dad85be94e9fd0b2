// The training settings of one job: the single table of every key a sweep file may put under
// `train:` or `grid:`, with its type, allowed values, default and documentation. The orchestrator
// validates sweep files against it; the worker reads a job's resolved params through it, so both
// sides agree on names and defaults. LibTorch-free.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep {

enum class ParamType {
  kInt,         // whole number (YAML 8, JSON 8)
  kNumber,      // real number (1e-4, 0.0001 and 1 all allowed)
  kBool,        // true / false
  kEnum,        // one string of `choices`
  kStringList,  // list of strings
  kPatternMap,  // map regex -> number (rank_pattern, alpha_pattern)
};

// Closed/open numeric bounds; unset means unbounded on that side.
struct Bounds {
  std::optional<double> lo;
  bool lo_open = false;  // true: value > lo, false: value >= lo
  std::optional<double> hi;
  bool hi_open = false;  // true: value < hi
};

struct ParamSpec {
  std::string name;
  ParamType type;
  Bounds bounds;                     // kInt, kNumber, and the values of kPatternMap
  std::vector<std::string> choices;  // kEnum
  nlohmann::json default_value;      // null = "not set" (documented per key)
  std::string doc;                   // one line for docs and hints
  // False for keys that change how a job runs but not what it computes (gradient_checkpointing):
  // they stay out of the job's identity hash, so turning one on finds the jobs run without it.
  bool in_identity = true;
};

// Every training key, in documentation order. The first four are the "core" LoRA sweep keys.
const std::vector<ParamSpec>& train_param_specs();
// nullptr when `name` is not a known key.
const ParamSpec* find_param_spec(const std::string& name);
// Empty when `value` is valid for `spec`; otherwise what is allowed, e.g.
// "must be an integer >= 1" or "must be one of cosine, linear, constant".
std::string check_param_value(const ParamSpec& spec, const nlohmann::json& value);
// A human description of what the key allows ("integer >= 1", "number > 0", ...).
std::string describe_allowed(const ParamSpec& spec);
// {name: default} for every key whose default is not null.
nlohmann::json default_train_params();

// The typed view the worker uses. from_json fills missing keys with the table's defaults and
// throws Failure (kUser) naming the key when a value is not allowed.
struct TrainParams {
  // LoRA and optimisation (the usual grid)
  int lora_r = 8;
  double lora_alpha = 16;
  double learning_rate = 2e-4;
  int batch_size = 8;
  // run length and evaluation
  std::string mode = "lora";  // lora | full
  int max_steps = 100;
  int eval_every = 0;    // 0: evaluate only at the end (and at step 0)
  int eval_samples = 0;  // 0: the whole val set
  int max_new_tokens = 16;
  int logging_steps = 1;
  int save_top_k = 1;
  // schedule and optimiser
  std::string lr_scheduler = "cosine";  // cosine | linear | constant
  double warmup_ratio = 0.03;
  int warmup_steps = 0;                   // > 0 overrides warmup_ratio
  std::optional<double> mm_projector_lr;  // unset: the projector uses learning_rate
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  int gradient_accumulation_steps = 1;
  double max_grad_norm = 1.0;  // 0: no clipping
  int seed = 42;
  // LoRA placement
  double lora_dropout = 0.05;
  std::vector<std::string> target_modules;
  bool use_rslora = false;
  bool lora_vision_tower = false;  // also wrap matching Linears of the CLIP tower
  bool train_projector = true;
  std::map<std::string, double> rank_pattern;
  std::map<std::string, double> alpha_pattern;
  // data and numerics
  int model_max_length = 2048;
  std::string image_aspect_ratio = "pad";  // pad | square
  std::string precision = "auto";          // auto | fp32 | bf16 (frozen base weights)
  bool gradient_checkpointing = false;     // recompute layer activations in backward
  // the learning check (worker/train/learning_check.h)
  std::optional<int> learning_check_steps;  // unset: a tenth of max_steps; 0: no check
  bool stop_if_not_learning = false;        // a failed check ends the job as failed

  static TrainParams from_json(const nlohmann::json& params);
  nlohmann::json to_json() const;
  // The step after which the learning check runs: learning_check_steps (capped at max_steps), or
  // max(2, max_steps / 10) capped at max_steps when unset; 0: no check.
  int learning_check_step() const;
  // alpha / r, or alpha / sqrt(r) with use_rslora (PEFT's scaling).
  double lora_scale() const;
};

}  // namespace sweep
