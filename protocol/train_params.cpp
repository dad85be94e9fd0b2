#include "train_params.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "common/failure.h"

namespace sweep {
namespace {

using json = nlohmann::json;

Bounds at_least(double lo) { return Bounds{lo, false, std::nullopt, false}; }
Bounds above(double lo) { return Bounds{lo, true, std::nullopt, false}; }
Bounds unit_half_open() { return Bounds{0.0, false, 1.0, true}; }

std::vector<ParamSpec> make_specs() {
  const json kDefaultTargets = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                "gate_proj", "up_proj", "down_proj"};
  return {
      {"lora_r", ParamType::kInt, at_least(1), {}, 8, "LoRA rank r"},
      {"lora_alpha",
       ParamType::kNumber,
       above(0),
       {},
       16,
       "LoRA alpha; the update is scaled by alpha/r (alpha/sqrt(r) with use_rslora)"},
      {"learning_rate",
       ParamType::kNumber,
       at_least(0),
       {},
       2e-4,
       "peak learning rate of the LoRA weights; 0 keeps them at their initial values (a control "
       "job, which the learning check flags)"},
      {"batch_size", ParamType::kInt, at_least(1), {}, 8, "samples per micro-batch"},
      {"mode",
       ParamType::kEnum,
       {},
       {"lora", "full"},
       "lora",
       "lora: train adapters + projector; full: train every language-model and projector weight"},
      {"max_steps", ParamType::kInt, at_least(1), {}, 100, "optimiser steps per job"},
      {"eval_every",
       ParamType::kInt,
       at_least(0),
       {},
       0,
       "evaluate (and checkpoint) every N steps; 0: only at step 0 and at the end"},
      {"eval_samples",
       ParamType::kInt,
       at_least(0),
       {},
       0,
       "evaluate on a seeded subset of this many val samples; 0: all of them"},
      {"max_new_tokens",
       ParamType::kInt,
       at_least(1),
       {},
       16,
       "tokens generated per val sample for val_exact_match"},
      {"logging_steps", ParamType::kInt, at_least(1), {}, 1, "a progress event every N steps"},
      {"save_top_k",
       ParamType::kInt,
       at_least(0),
       {},
       1,
       "checkpoints kept by the objective, besides the latest"},
      {"lr_scheduler",
       ParamType::kEnum,
       {},
       {"cosine", "linear", "constant"},
       "cosine",
       "learning-rate schedule after warmup"},
      {"warmup_ratio",
       ParamType::kNumber,
       unit_half_open(),
       {},
       0.03,
       "warmup steps = ceil(max_steps * warmup_ratio)"},
      {"warmup_steps",
       ParamType::kInt,
       at_least(0),
       {},
       0,
       "warmup steps; > 0 overrides warmup_ratio"},
      {"mm_projector_lr",
       ParamType::kNumber,
       above(0),
       {},
       nullptr,
       "learning rate of the projector; unset: learning_rate"},
      {"weight_decay", ParamType::kNumber, at_least(0), {}, 0.0, "AdamW weight decay"},
      {"adam_beta1", ParamType::kNumber, unit_half_open(), {}, 0.9, "AdamW beta1"},
      {"adam_beta2", ParamType::kNumber, unit_half_open(), {}, 0.999, "AdamW beta2"},
      {"adam_epsilon", ParamType::kNumber, above(0), {}, 1e-8, "AdamW epsilon"},
      {"gradient_accumulation_steps",
       ParamType::kInt,
       at_least(1),
       {},
       1,
       "micro-batches per optimiser step"},
      {"max_grad_norm",
       ParamType::kNumber,
       at_least(0),
       {},
       1.0,
       "clip the global gradient norm; 0: no clipping"},
      {"seed",
       ParamType::kInt,
       at_least(0),
       {},
       42,
       "seed of initialisation, shuffling and dropout"},
      {"lora_dropout",
       ParamType::kNumber,
       unit_half_open(),
       {},
       0.05,
       "dropout on the LoRA branch input"},
      {"target_modules",
       ParamType::kStringList,
       {},
       {},
       kDefaultTargets,
       "Linear layers of the language model that get adapters (matched by name suffix)"},
      {"use_rslora", ParamType::kBool, {}, {}, false, "rank-stabilised scaling alpha/sqrt(r)"},
      {"lora_vision_tower",
       ParamType::kBool,
       {},
       {},
       false,
       "also put adapters on matching Linears of the CLIP vision tower"},
      {"train_projector", ParamType::kBool, {}, {}, true, "train the mm projector (as LLaVA does)"},
      {"rank_pattern",
       ParamType::kPatternMap,
       at_least(1),
       {},
       json::object(),
       "per-module rank: {regex: r}, matched as (.*\\.)?(regex)$ against the module path"},
      {"alpha_pattern",
       ParamType::kPatternMap,
       above(0),
       {},
       json::object(),
       "per-module alpha: {regex: alpha}"},
      {"model_max_length",
       ParamType::kInt,
       at_least(8),
       {},
       2048,
       "tokens per sample after image splicing; longer samples are truncated"},
      {"image_aspect_ratio",
       ParamType::kEnum,
       {},
       {"pad", "square"},
       "pad",
       "pad: expand to a square with the CLIP mean colour (LLaVA-1.5); square: CLIP's own resize "
       "of the shortest edge and centre crop"},
      {"precision",
       ParamType::kEnum,
       {},
       {"auto", "fp32", "bf16"},
       "auto",
       "dtype of the frozen base weights; auto: bf16 on CUDA and on CPUs with AVX512-BF16 or AMX, "
       "else fp32"},
      {"gradient_checkpointing",
       ParamType::kBool,
       {},
       {},
       false,
       "recompute each decoder layer's activations in backward instead of keeping them: less "
       "memory, about one more forward per step",
       /*in_identity=*/false},
      {"learning_check_steps",
       ParamType::kInt,
       at_least(0),
       {},
       nullptr,
       "check after this many steps that the adapter learns (LoRA B norm, LoRA gradient norm, "
       "train loss moved); unset: a tenth of max_steps (at least 2); 0: no check",
       /*in_identity=*/false},
      {"stop_if_not_learning",
       ParamType::kBool,
       {},
       {},
       false,
       "end a job whose learning check fails as failed (not retried) instead of training on",
       /*in_identity=*/false},
  };
}

std::string format_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

bool in_bounds(const Bounds& b, double v) {
  if (b.lo && (b.lo_open ? !(v > *b.lo) : !(v >= *b.lo))) return false;
  if (b.hi && (b.hi_open ? !(v < *b.hi) : !(v <= *b.hi))) return false;
  return std::isfinite(v);
}

std::string describe_bounds(const Bounds& b) {
  std::string s;
  if (b.lo && b.hi) {
    s = std::string(b.lo_open ? "in (" : "in [") + format_number(*b.lo) + ", " +
        format_number(*b.hi) + (b.hi_open ? ")" : "]");
  } else if (b.lo) {
    s = std::string(b.lo_open ? "> " : ">= ") + format_number(*b.lo);
  } else if (b.hi) {
    s = std::string(b.hi_open ? "< " : "<= ") + format_number(*b.hi);
  }
  return s;
}

constexpr double kIntMin = std::numeric_limits<int>::min();
constexpr double kIntMax = std::numeric_limits<int>::max();

// "[lo, hi]" of whole numbers, both ends set and within int's range.
std::string int_range(const Bounds& b) {
  auto lo = static_cast<long long>(b.lo_open ? std::floor(*b.lo) + 1 : std::ceil(*b.lo));
  auto hi = static_cast<long long>(b.hi_open ? std::ceil(*b.hi) - 1 : std::floor(*b.hi));
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

bool is_integer(const json& v) {
  if (v.is_number_integer()) return true;
  if (v.is_number_float()) {
    double d = v.get<double>();
    return std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15;
  }
  return false;
}

template <typename T>
T get_or_default(const json& params, const ParamSpec& spec) {
  const json& v = params.contains(spec.name) ? params.at(spec.name) : spec.default_value;
  return v.get<T>();
}

}  // namespace

const std::vector<ParamSpec>& train_param_specs() {
  static const std::vector<ParamSpec> specs = make_specs();
  return specs;
}

const ParamSpec* find_param_spec(const std::string& name) {
  for (const ParamSpec& s : train_param_specs())
    if (s.name == name) return &s;
  return nullptr;
}

std::string describe_allowed(const ParamSpec& spec) {
  std::string b = describe_bounds(spec.bounds);
  switch (spec.type) {
    case ParamType::kInt:
      return "an integer" + (b.empty() ? "" : " " + b);
    case ParamType::kNumber:
      return "a number" + (b.empty() ? "" : " " + b);
    case ParamType::kBool:
      return "true or false";
    case ParamType::kEnum: {
      std::string s = "one of ";
      for (size_t i = 0; i < spec.choices.size(); ++i) s += (i ? ", " : "") + spec.choices[i];
      return s;
    }
    case ParamType::kStringList:
      return "a non-empty list of strings";
    case ParamType::kPatternMap:
      return "a map of regex to a number" + (b.empty() ? "" : " " + b);
  }
  return "";
}

std::string check_param_value(const ParamSpec& spec, const json& value) {
  const std::string must = "must be " + describe_allowed(spec);
  switch (spec.type) {
    case ParamType::kInt: {
      // TrainParams holds these as int: a value past int's range is refused here, with the range
      // it must fit, instead of wrapping when narrowed (2^31 would become negative).
      if (!value.is_number()) return must;
      Bounds fits = spec.bounds;
      if (!fits.lo || *fits.lo < kIntMin) fits.lo = kIntMin, fits.lo_open = false;
      if (!fits.hi || *fits.hi > kIntMax) fits.hi = kIntMax, fits.hi_open = false;
      if (!in_bounds(fits, value.get<double>()) && in_bounds(spec.bounds, value.get<double>()))
        return "must be an integer in " + int_range(fits) + ", not " + value.dump();
      if (!is_integer(value) || !in_bounds(spec.bounds, value.get<double>())) return must;
      return "";
    }
    case ParamType::kNumber:
      if (!value.is_number() || !in_bounds(spec.bounds, value.get<double>())) return must;
      return "";
    case ParamType::kBool:
      return value.is_boolean() ? "" : must;
    case ParamType::kEnum:
      if (!value.is_string()) return must;
      for (const auto& c : spec.choices)
        if (c == value.get<std::string>()) return "";
      return must;
    case ParamType::kStringList:
      if (!value.is_array() || value.empty()) return must;
      for (const auto& e : value)
        if (!e.is_string() || e.get<std::string>().empty()) return must;
      return "";
    case ParamType::kPatternMap:
      if (!value.is_object()) return must;
      for (const auto& [k, v] : value.items()) {
        if (k.empty() || !v.is_number() || !in_bounds(spec.bounds, v.get<double>())) return must;
      }
      return "";
  }
  return must;
}

json default_train_params() {
  json out = json::object();
  for (const ParamSpec& s : train_param_specs())
    if (!s.default_value.is_null()) out[s.name] = s.default_value;
  return out;
}

TrainParams TrainParams::from_json(const json& params) {
  if (!params.is_object()) fail(ErrorKind::kUser, "params must be a JSON object");
  for (const auto& [key, value] : params.items()) {
    const ParamSpec* spec = find_param_spec(key);
    if (!spec) fail(ErrorKind::kUser, "unknown training parameter '" + key + "'");
    if (value.is_null() && spec->default_value.is_null()) continue;
    std::string err = check_param_value(*spec, value);
    if (!err.empty()) fail(ErrorKind::kUser, "parameter '" + key + "' " + err);
  }
  auto spec = [](const char* n) -> const ParamSpec& { return *find_param_spec(n); };
  TrainParams p;
  p.lora_r = get_or_default<int>(params, spec("lora_r"));
  p.lora_alpha = get_or_default<double>(params, spec("lora_alpha"));
  p.learning_rate = get_or_default<double>(params, spec("learning_rate"));
  p.batch_size = get_or_default<int>(params, spec("batch_size"));
  p.mode = get_or_default<std::string>(params, spec("mode"));
  p.max_steps = get_or_default<int>(params, spec("max_steps"));
  p.eval_every = get_or_default<int>(params, spec("eval_every"));
  p.eval_samples = get_or_default<int>(params, spec("eval_samples"));
  p.max_new_tokens = get_or_default<int>(params, spec("max_new_tokens"));
  p.logging_steps = get_or_default<int>(params, spec("logging_steps"));
  p.save_top_k = get_or_default<int>(params, spec("save_top_k"));
  p.lr_scheduler = get_or_default<std::string>(params, spec("lr_scheduler"));
  p.warmup_ratio = get_or_default<double>(params, spec("warmup_ratio"));
  p.warmup_steps = get_or_default<int>(params, spec("warmup_steps"));
  if (params.contains("mm_projector_lr") && !params.at("mm_projector_lr").is_null())
    p.mm_projector_lr = params.at("mm_projector_lr").get<double>();
  p.weight_decay = get_or_default<double>(params, spec("weight_decay"));
  p.adam_beta1 = get_or_default<double>(params, spec("adam_beta1"));
  p.adam_beta2 = get_or_default<double>(params, spec("adam_beta2"));
  p.adam_epsilon = get_or_default<double>(params, spec("adam_epsilon"));
  p.gradient_accumulation_steps = get_or_default<int>(params, spec("gradient_accumulation_steps"));
  p.max_grad_norm = get_or_default<double>(params, spec("max_grad_norm"));
  p.seed = get_or_default<int>(params, spec("seed"));
  p.lora_dropout = get_or_default<double>(params, spec("lora_dropout"));
  p.target_modules = get_or_default<std::vector<std::string>>(params, spec("target_modules"));
  p.use_rslora = get_or_default<bool>(params, spec("use_rslora"));
  p.lora_vision_tower = get_or_default<bool>(params, spec("lora_vision_tower"));
  p.train_projector = get_or_default<bool>(params, spec("train_projector"));
  p.rank_pattern = get_or_default<std::map<std::string, double>>(params, spec("rank_pattern"));
  p.alpha_pattern = get_or_default<std::map<std::string, double>>(params, spec("alpha_pattern"));
  p.model_max_length = get_or_default<int>(params, spec("model_max_length"));
  p.image_aspect_ratio = get_or_default<std::string>(params, spec("image_aspect_ratio"));
  p.precision = get_or_default<std::string>(params, spec("precision"));
  p.gradient_checkpointing = get_or_default<bool>(params, spec("gradient_checkpointing"));
  if (params.contains("learning_check_steps") && !params.at("learning_check_steps").is_null())
    p.learning_check_steps = params.at("learning_check_steps").get<int>();
  p.stop_if_not_learning = get_or_default<bool>(params, spec("stop_if_not_learning"));
  return p;
}

json TrainParams::to_json() const {
  json j = {
      {"lora_r", lora_r},
      {"lora_alpha", lora_alpha},
      {"learning_rate", learning_rate},
      {"batch_size", batch_size},
      {"mode", mode},
      {"max_steps", max_steps},
      {"eval_every", eval_every},
      {"eval_samples", eval_samples},
      {"max_new_tokens", max_new_tokens},
      {"logging_steps", logging_steps},
      {"save_top_k", save_top_k},
      {"lr_scheduler", lr_scheduler},
      {"warmup_ratio", warmup_ratio},
      {"warmup_steps", warmup_steps},
      {"weight_decay", weight_decay},
      {"adam_beta1", adam_beta1},
      {"adam_beta2", adam_beta2},
      {"adam_epsilon", adam_epsilon},
      {"gradient_accumulation_steps", gradient_accumulation_steps},
      {"max_grad_norm", max_grad_norm},
      {"seed", seed},
      {"lora_dropout", lora_dropout},
      {"target_modules", target_modules},
      {"use_rslora", use_rslora},
      {"lora_vision_tower", lora_vision_tower},
      {"train_projector", train_projector},
      {"rank_pattern", rank_pattern},
      {"alpha_pattern", alpha_pattern},
      {"model_max_length", model_max_length},
      {"image_aspect_ratio", image_aspect_ratio},
      {"precision", precision},
      {"gradient_checkpointing", gradient_checkpointing},
      {"stop_if_not_learning", stop_if_not_learning},
  };
  if (mm_projector_lr) j["mm_projector_lr"] = *mm_projector_lr;
  if (learning_check_steps) j["learning_check_steps"] = *learning_check_steps;
  return j;
}

int TrainParams::learning_check_step() const {
  if (learning_check_steps) return std::min(*learning_check_steps, max_steps);
  return std::min(max_steps, std::max(2, max_steps / 10));
}

double TrainParams::lora_scale() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(lora_r)) : lora_alpha / lora_r;
}

}  // namespace sweep
