// One job's run inside sweep-worker: its events, model, data, trainer, evaluations and checkpoints.
// run_job_file drives one JobRun from start to its final event; run_pack drives several in
// lockstep over one shared frozen base (job_runner.h). Internal to worker/train.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "data/loader.h"
#include "protocol/events.h"
#include "protocol/job_file.h"
#include "protocol/train_params.h"
#include "worker/model/llava.h"
#include "worker/model/lora.h"
#include "worker/train/base_score_cache.h"
#include "worker/train/checkpoint_manager.h"
#include "worker/train/evaluator.h"
#include "worker/train/feature_cache.h"
#include "worker/train/heartbeat.h"
#include "worker/train/learning_check.h"
#include "worker/train/model_fingerprint.h"
#include "worker/train/trainer.h"

namespace sweep::train {

// Losses of the steps since the window was last taken.
struct LossWindow {
  double loss_sum = 0, seconds = 0;
  int64_t steps = 0, tokens = 0;
  void add(const StepResult& r);
  double mean() const { return steps ? loss_sum / steps : 0.0; }
  double tokens_per_s() const { return seconds > 0 ? tokens / seconds : 0.0; }
  void clear() { *this = LossWindow{}; }
};

class JobRun {
 public:
  JobRun(const JobFile& job, EventWriter& events);
  ~JobRun();

  // The whole run on a model of its own; returns the exit code of a clean end (0). Throws on
  // failure: report_failure turns the exception into the final event.
  int run();

  // The parts of run() for a pack:
  //   open(&base); then per step: stop_wanted() -> stop(); done() -> finish(); else
  //   trainer().step() (or pack_step) and after_step(result), which returns false when the job
  //   must stop now (it then calls stop() itself).
  // `shared_base` (a model without adapters, in the job's precision) lends its frozen weights;
  // null: the job loads its own model.
  void open(model::LlavaForConditionalGeneration* shared_base);
  bool done() const { return trainer_->steps_done() >= p_.max_steps; }
  // SIGTERM for the whole process, or <run_dir>/STOP for this job alone.
  bool stop_wanted() const;
  bool after_step(const StepResult& r);
  int stop();
  void finish();

  const std::string& stage() const { return stage_; }
  void set_stage(std::string stage) { stage_ = std::move(stage); }
  const JobFile& job() const { return job_; }
  const TrainParams& params() const { return p_; }
  Trainer& trainer() { return *trainer_; }
  model::LlavaForConditionalGeneration& model() { return model_; }

 private:
  void start();
  void load_model(model::LlavaForConditionalGeneration* shared_base);
  void load_data();
  void resume();
  void report_lora_targets();
  void check_learning(const StepResult& r);
  bool reached_rung();
  void evaluate(int step);
  void open_base_scores();
  EvalResult evaluate_base();
  void save_checkpoint(int step, const nlohmann::json& metrics);
  nlohmann::json checkpoint_state() const;
  // manifest.json of the checkpoint at `step` (checkpoint_manifest.h).
  nlohmann::json checkpoint_manifest(int step, const nlohmann::json& metrics) const;

  const JobFile& job_;
  EventWriter& events_;
  std::string stage_ = "load_model";
  TrainParams p_;
  torch::Device device_ = torch::kCPU;
  model::LoraSettings lora_;
  std::optional<CheckpointInfo> resume_from_;
  std::unique_ptr<CheckpointManager> checkpoints_;
  model::LlavaForConditionalGeneration model_{nullptr};
  model::TrainableGroups groups_;
  std::unique_ptr<data::BatchLoader> loader_;
  std::unique_ptr<VisionFeatureCache> feature_cache_;  // null: no cache for this job
  std::unique_ptr<Evaluator> evaluator_;
  std::unique_ptr<BaseScoreCache> base_scores_;  // step 0's score shared by the sweep's jobs
  std::unique_ptr<Trainer> trainer_;
  ModelFingerprint base_fingerprint_;  // of job_.base_model, for the manifest
  nlohmann::json data_fingerprint_ = nlohmann::json::object();  // train/val files
  std::atomic<int> step_{0};
  std::unique_ptr<Heartbeat> heartbeat_;
  std::unique_ptr<LearningCheck> learning_check_;
  size_t next_rung_ = 0;  // index into job_.eval_at_tokens of the next rung to reach
  LossWindow log_window_, eval_window_;
  nlohmann::json last_eval_ = nlohmann::json::object();      // metrics of the latest evaluation
  nlohmann::json final_metrics_ = nlohmann::json::object();  // last checkpoint's metrics
  nlohmann::json best_ = nullptr;  // {step, metrics...} of the best evaluation by the objective
};

// The final event of a failed run from the exception in flight (call it inside a catch block):
// diverged, out of memory (with a hint) or failed at `run`'s stage. Returns the exit code the job
// would end with alone (protocol/exit_codes.h). Never throws.
int report_failure(JobRun& run, EventWriter& events);

}  // namespace sweep::train
