// One job's optimisation loop, one optimiser step at a time (the caller decides when to evaluate,
// checkpoint and stop). Owns AdamW with LLaVA's param groups and the learning-rate schedule;
// reads micro-batches from a BatchLoader. Exact resume: state() + save_files() at a step boundary,
// then restore() in a fresh process continues with the same losses (same seed, one thread).
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/loader.h"
#include "protocol/train_params.h"
#include "worker/model/llava.h"
#include "worker/model/lora.h"
#include "worker/train/lr_schedule.h"

namespace sweep::train {

struct OptimizerSetup;
class VisionFeatureCache;

// A non-finite loss or gradient norm: the job stops as `diverged` (exit code 3).
class DivergedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct StepResult {
  int step = 0;                  // optimiser steps done, this one included
  double loss = 0;               // mean loss of the step's micro-batches
  double lr = 0;                 // learning rate of the first param group for this update
  double grad_norm = 0;          // global L2 norm before clipping
  int64_t samples = 0;           // samples in this step
  int64_t tokens = 0;            // real (non-padding) tokens after image splicing
  double seconds = 0;            // wall time of the step
  double data_wait_seconds = 0;  // part of it spent waiting for the loader
};

class Trainer {
 public:
  // `groups` from model::set_trainable. The schedule spans p.max_steps.
  Trainer(model::LlavaForConditionalGeneration model, const model::TrainableGroups& groups,
          const TrainParams& p, data::BatchLoader& loader);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // One optimiser step over gradient_accumulation_steps micro-batches. Throws DivergedError on a
  // NaN/inf loss or gradient norm (before the weights are updated).
  StepResult step();

  // step() in its parts, for a pack whose language-model passes run together (pack_step.h):
  //   begin_step(); then micro_batches() times: b = next_micro_batch(), the loss of b under this
  //   trainer's adapters, backward of loss / micro_batches(), add_micro_loss(loss); finish_step().
  void begin_step();
  int micro_batches() const { return p_.gradient_accumulation_steps; }
  // The next micro-batch from the loader, spliced by this trainer's model (its own projector,
  // the feature cache when set).
  model::SplicedBatch next_micro_batch();
  void add_micro_loss(const torch::Tensor& loss);  // the loss of the last micro-batch (a scalar)
  StepResult finish_step();                        // throws DivergedError as step() does
  model::LlavaForConditionalGeneration& model() { return model_; }

  int steps_done() const { return step_; }
  int64_t samples_seen() const { return samples_seen_; }
  int64_t tokens_seen() const { return tokens_seen_; }
  double epoch() const;  // fractional: samples_seen / train set size
  const LrSchedule& schedule() const { return schedule_; }
  std::string describe_param_groups() const;
  // Image features from `cache` (not owned; outlives the trainer) instead of the vision tower;
  // image_paths[i] is the image file of the loader's sample i (empty: none).
  void use_feature_cache(VisionFeatureCache* cache, std::vector<std::string> image_paths);

  // What trainer_state.json needs to continue: step, counters, schedule, loader position.
  nlohmann::json state() const;
  // optimizer.pt (torch::save of AdamW) and rng.json into `dir`.
  void save_files(const std::string& dir) const;
  // The inverse of state() + save_files(); the model must already hold the checkpoint's weights.
  // Throws std::runtime_error naming the checkpoint when a file is missing or does not fit.
  void restore(const std::string& dir, const nlohmann::json& state);

 private:
  model::LlavaForConditionalGeneration model_;
  TrainParams p_;
  data::BatchLoader& loader_;
  std::unique_ptr<OptimizerSetup> opt_;
  LrSchedule schedule_;
  int64_t image_size_;
  int64_t image_tokens_;  // positions one image placeholder becomes
  VisionFeatureCache* feature_cache_ = nullptr;
  std::vector<std::string> image_paths_;  // by loader sample index
  // The step between begin_step and finish_step.
  struct Pending {
    StepResult result;
    torch::Tensor loss_sum;  // scalar fp64, detached: one host read per step
    std::chrono::steady_clock::time_point started;
    double waited_before = 0;
  } pending_;
  int step_ = 0;
  int64_t samples_seen_ = 0;
  int64_t tokens_seen_ = 0;
};

}  // namespace sweep::train
