// The data of a sweep report: one JSON document built from the results database (read-only),
// which the page's script draws (docs/report.md). LibTorch-free.
//
// {"sweep": {name, spec_path, objective: {metric, mode}},
//  "generated_at": unix seconds, "axis": "tokens" | "step",
//  "swept_keys": [keys whose value differs between jobs], "eval_metrics": [names],
//  "fixed_params": {the parameters every job shares} (a job's "params" holds its swept keys),
//  "base": {metric: value at step 0} (the base model's score; empty without a step-0 eval),
//  "jobs": [{id, hash, state, params, objective (best after step 0), best_step,
//            base_objective (the job's step-0 score), gain (over it, positive = better),
//            not_learning, learning_check: {step, passed, lora_b_norm, lora_grad_norm,
//            loss_first, loss_last, reason} | null, rank, steps, tokens,
//            checkpoint, rung, error, exit_code, started_at, finished_at,
//            attempts: [...], checkpoints: [...], predictions: [...]}],
//  "curves": {"<job id>": {"train_loss": {"x": [...], "y": [...]}, "val_loss": {...}}},
//  "summary": {states, wall_s, job_s, compute: {steps, tokens, saved_steps, saved_tokens},
//              failures: [{job, hash, state, exit_code, error}]},
//  "limits": {points_per_curve, overlay_jobs, jobs}}
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "db/store.h"

namespace sweep::report {

struct ReportOptions {
  // Points drawn per curve: at most max_points, fewer when the sweep has many jobs so that the
  // whole page holds about total_points (never fewer than min_points per curve).
  size_t max_points = 200;
  size_t min_points = 16;
  size_t total_points = 400000;
  // Jobs overlaid on the curve charts (the best by the objective first); every job keeps its own
  // curves in its detail panel.
  size_t overlay_jobs = 300;
};

// Reads everything the page shows. kNotFound/kDatabase errors come from the store.
Result<nlohmann::json> build_report_data(Store& store, const SweepRecord& sweep,
                                         const ReportOptions& options = {});

// The first line of a (possibly multi-line) error message, trimmed.
std::string first_line(const std::string& text);

}  // namespace sweep::report
