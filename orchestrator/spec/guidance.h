// Guidance on a sweep's settings: warnings, never errors, about values that usually make a LoRA
// fine-tune of LLaVA learn nothing, diverge, or leave the jobs impossible to tell apart. `sweep
// lint` and `sweep plan` print them; docs/sweep-file.md ("Warnings") documents each one.
//
// The checks read only the expanded jobs (their resolved params) and the spec's objective, so
// they apply to jobs made by any means (grid, include points, sampled search points). Pure
// functions, LibTorch-free, safe to call from several threads.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "orchestrator/spec/sweep_spec.h"

namespace sweep {

// The thresholds, with where each comes from (the reasons are repeated in the warnings and in
// docs/sweep-file.md). A value exactly at a threshold does not warn.
namespace guidance {

// LoRA scale alpha/r (checked only without use_rslora). The common recipes span 0.25 (QLoRA:
// r 64, alpha 16) to 2 (LLaVA finetune_lora.sh: r 128, alpha 256); PEFT's default is 1 (r 8,
// alpha 8). Below 0.25 the update is scaled down so far that, with a fixed alpha and a large
// rank, learning stalls (rsLoRA, Kalajdzievski 2023); above 8 (4x LLaVA's) it acts like a
// learning rate several times too high, because with Adam the step of the merged weight grows
// about linearly with the scale.
constexpr double kMinLoraScale = 0.25;
constexpr double kMaxLoraScale = 8.0;

// Peak learning rate of the LoRA weights. LLaVA's LoRA recipe uses 2e-4, QLoRA 2e-4 (7B/13B)
// and 1e-4 (33B/65B). LLaVA's full fine-tune uses 2e-5, and LoRA wants about ten times the full
// fine-tune rate, so below 1e-5 the adapters barely move in a sweep's budget. Adam moves each
// weight by about the learning rate per step; at 1e-2 that is as large as a lora_A entry itself
// (kaiming-uniform bound 1/sqrt(4096) = 0.016 for a 7B model), and such runs diverge.
constexpr double kMinLearningRate = 1e-5;
constexpr double kMaxLearningRate = 1e-2;

// batch_size x gradient_accumulation_steps. LLaVA's LoRA recipe steps on 128 samples, QLoRA's
// on 16; below 8 (1/16 of LLaVA's) the gradient noise hides the differences between jobs and
// learning rates tuned for the recipes' batches overshoot.
constexpr int kMinEffectiveBatch = 8;

// Val samples behind a proportion metric (val_exact_match, val_token_acc). Its standard error
// is sqrt(p(1-p)/n) <= 0.5/sqrt(n): 0.05 at n = 100, so a difference between two jobs must
// exceed about 0.14 (two standard errors of a difference) to stand out there, and more below.
constexpr int kMinEvalSamples = 100;

}  // namespace guidance

// One warning, aggregated over the jobs it concerns.
struct Warning {
  std::string id;       // stable name, e.g. "learning-rate-high" (docs/sweep-file.md)
  std::string message;  // what and how many: "learning rate above 0.01 in 4 of 12 jobs: ..."
  std::string reason;   // why it usually spoils the fine-tune
  std::string source;   // the paper or script the threshold comes from
  std::vector<std::string> job_hashes;  // the jobs concerned, in job order
};

// Every warning for these jobs, in a fixed order of ids (that of docs/sweep-file.md). Jobs
// flagged as duplicates are skipped (they are not run), and "in K of N jobs" counts the rest.
// Empty when nothing looks off.
std::vector<Warning> guidance_warnings(const SweepSpec& spec, const std::vector<ExpandedJob>& jobs);

// {id, message, reason, source, jobs: [hash, ...]}: the form of `--format json`.
nlohmann::json warning_to_json(const Warning& warning);

}  // namespace sweep
