#include "worker/train/job_run.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include <torch/torch.h>
#include <torch/version.h>

#include "common/file_system.h"
#include "data/image.h"
#include "data/llava_json.h"
#include "data/loader.h"
#include "data/max_length.h"
#include "data/tokenizer.h"
#include "protocol/events.h"
#include "protocol/exit_codes.h"
#include "protocol/job_file.h"
#include "protocol/memory_estimate.h"
#include "protocol/train_params.h"
#include "worker/model/checkpoint.h"
#include "worker/model/lora.h"
#include "worker/model/pack.h"
#include "worker/train/base_score_cache.h"
#include "worker/train/checkpoint_manager.h"
#include "worker/train/checkpoint_manifest.h"
#include "worker/train/evaluator.h"
#include "worker/train/feature_cache.h"
#include "worker/train/heartbeat.h"
#include "worker/train/model_setup.h"
#include "worker/train/stop_signal.h"
#include "worker/train/trainer.h"

#ifndef SWEEP_VERSION
#define SWEEP_VERSION "dev"
#endif

namespace sweep::train {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// A file in the job's run directory that stops this job alone, as SIGTERM stops the process
// (docs/worker-protocol.md: how the orchestrator stops one job of a pack).
constexpr const char* kStopFile = "STOP";

std::string host_name() {
  char buf[256] = {};
  return gethostname(buf, sizeof buf - 1) == 0 ? buf : "unknown";
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  return json::parse(in);
}

// LibTorch's errors carry a C++ backtrace in what(); events get the message alone.
std::string message_of(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e))
    return c10_error->what_without_backtrace();
  return e.what();
}

// LibTorch's CPU allocator reports a failed host allocation as a plain c10::Error
// ("DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes").
bool is_host_allocation_failure(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  return c10_error &&
         std::strstr(c10_error->what_without_backtrace(), "can't allocate memory") != nullptr;
}

// The job's memory estimate (protocol/memory_estimate.h) for an out-of-memory message; empty
// when it cannot be made.
std::string memory_estimate_note(const JobFile& job) {
  try {
    const std::string config = job.base_model + "/config.json";
    ModelShape shape = ModelShape::from_config(read_json_file(config), config);
    MemoryEstimate e = estimate_memory(shape, TrainParams::from_json(job.params),
                                       job.device.rfind("cuda", 0) == 0 ? "cuda" : "cpu");
    return "\n  estimated peak memory: " + describe_estimate(e);
  } catch (const std::exception&) {
    return "";
  }
}

// Input that can only fail again: anything wrong while loading the model or the data, and a
// sample the data layer refuses later (a truncated or corrupt image: Failure kUser/kNotFound).
bool is_bad_input(const std::exception& e, const std::string& stage) {
  if (stage == "load_model" || stage == "load_data") return true;
  const auto* failure = dynamic_cast<const Failure*>(&e);
  return failure &&
         (failure->kind() == ErrorKind::kUser || failure->kind() == ErrorKind::kNotFound);
}

}  // namespace

void LossWindow::add(const StepResult& r) {
  loss_sum += r.loss;
  seconds += r.seconds;
  tokens += r.tokens;
  ++steps;
}

JobRun::JobRun(const JobFile& job, EventWriter& events) : job_(job), events_(events) {}

JobRun::~JobRun() = default;

int JobRun::run() {
  open(/*shared_base=*/nullptr);
  while (!done()) {
    if (stop_wanted()) return stop();
    stage_ = "train";
    if (!after_step(trainer_->step())) return kExitOk;
  }
  finish();
  return kExitOk;
}

void JobRun::open(model::LlavaForConditionalGeneration* shared_base) {
  start();
  heartbeat_ = std::make_unique<Heartbeat>(events_, step_, job_.heartbeat_seconds);
  load_model(shared_base);
  load_data();
  resume();
  learning_check_ = std::make_unique<LearningCheck>(p_, trainer_->steps_done());
}

bool JobRun::stop_wanted() const {
  return stop_requested() || fs::exists(fs::path(job_.run_dir) / kStopFile);
}

void JobRun::start() {
  p_ = TrainParams::from_json(job_.params);
  device_ = resolve_device(job_.device);
  torch::set_num_threads(std::max(1, job_.threads));
  torch::manual_seed(p_.seed);
  install_stop_handlers();
  checkpoints_ = std::make_unique<CheckpointManager>(job_.checkpoints_dir(), job_.objective_metric,
                                                     job_.objective_mode != "max", p_.save_top_k);
  checkpoints_->scan();
  if (job_.resume) resume_from_ = checkpoints_->latest();
  StartedEvent started;
  started.pid = static_cast<int64_t>(getpid());
  started.host = host_name();
  started.device = device_.str();
  started.threads = torch::get_num_threads();
  started.versions = {{"sweep", SWEEP_VERSION}, {"torch", TORCH_VERSION}};
  if (resume_from_) started.resumed_from_step = resume_from_->step;
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES")) {
    started.cuda_visible_devices = visible;
  }
  events_.emit(started);
}

void JobRun::load_model(model::LlavaForConditionalGeneration* shared_base) {
  stage_ = "load_model";
  const torch::Dtype dtype = resolve_base_dtype(p_.precision, device_);
  const bool lora = p_.mode == "lora";
  lora_ = lora_settings_from(p_, job_.base_model);
  const bool full_resume = resume_from_ && !lora;
  if (shared_base && !lora)
    throw std::runtime_error("mode: full cannot share a worker process (it trains the base)");
  base_fingerprint_ = fingerprint_model_dir(job_.base_model);
  if (resume_from_)
    check_checkpoint_base(resume_from_->path, job_.base_model, "base_model", std::cerr);
  if (shared_base) {  // the pack's frozen weights; the projector is the job's own when it trains
    model_ = model::share_frozen(*shared_base, p_.train_projector);
  } else {
    model_ = model::load_llava(full_resume ? resume_from_->path : job_.base_model, dtype, device_);
  }
  if (lora && resume_from_) {
    model::load_adapter(model_, resume_from_->path, p_.seed);
  } else if (lora) {
    model::apply_lora(model_, lora_, p_.seed);
  }
  model_->to_precision(dtype, device_);
  model_->language_model->model->set_gradient_checkpointing(p_.gradient_checkpointing);
  groups_ = model::set_trainable(model_, lora, p_.train_projector);
  if (lora) report_lora_targets();
}

// <run_dir>/lora_targets.json names every module that got an adapter, by part; the event carries
// the counts (docs/worker.md, "LoRA targets").
void JobRun::report_lora_targets() {
  LoraTargets targets = model::lora_targets(model_, lora_);
  targets.modules = model::adapted_module_paths(model_);  // a resumed adapter's own modules
  const std::string path = (fs::absolute(job_.run_dir) / "lora_targets.json").string();
  nlohmann::json report = targets.report();
  report["target_modules"] = lora_.target_modules;
  report["lora_vision_tower"] = lora_.include_vision_tower;
  write_file_atomic(path, report.dump(2) + "\n");
  LoraTargetsEvent event;
  for (const auto& [part, n] : targets.counts()) event.counts[part] = n;
  event.left_out = static_cast<int64_t>(targets.left_out.size());
  event.path = path;
  events_.emit(event);
}

void JobRun::load_data() {
  stage_ = "load_data";
  data::Tokenizer tok = data::Tokenizer::load(job_.base_model);
  data::LoaderOptions lo;
  lo.image_folder = job_.image_folder;
  // The sweep file's data.max_image_pixels, else check-data's default: a decompression bomb that
  // slipped past the data check (a file replaced since) is bad input, not an out-of-memory kill.
  lo.max_image_pixels =
      job_.max_image_pixels > 0 ? job_.max_image_pixels : data::kDefaultMaxImagePixels;
  lo.image_size = model_->config().image_size();
  lo.pad_to_square = p_.image_aspect_ratio == "pad";
  lo.batch_size = p_.batch_size;
  lo.seed = static_cast<uint64_t>(p_.seed);
  lo.max_length =
      data::resolve_max_length(p_.model_max_length, model_->config().text.max_position_embeddings)
          .value;
  std::vector<data::Sample> train = data::load_llava_json(job_.train_data);
  data_fingerprint_ = {
      {"train", data_file_fingerprint(job_.train_data)},
      {"val", data_file_fingerprint(job_.val_data)},
      {"image_folder", fs::absolute(job_.image_folder).lexically_normal().string()}};
  if (train.empty()) throw std::runtime_error(job_.train_data + " holds no samples");
  std::vector<std::string> train_images;  // as the loader opens them
  for (const data::Sample& s : train)
    train_images.push_back(s.image.empty() ? "" : (fs::path(lo.image_folder) / s.image).string());
  loader_ = std::make_unique<data::BatchLoader>(std::move(train), tok, lo);
  if (!job_.val_data.empty()) {
    EvalOptions eo;
    eo.image_folder = job_.image_folder;
    eo.max_image_pixels = lo.max_image_pixels;
    eo.image_size = lo.image_size;
    eo.pad_to_square = lo.pad_to_square;
    eo.max_length = lo.max_length;
    eo.max_new_tokens = p_.max_new_tokens;
    eo.batch_size = p_.batch_size;
    eo.max_samples = p_.eval_samples;
    eo.seed = static_cast<uint64_t>(p_.seed);
    evaluator_ = std::make_unique<Evaluator>(data::load_llava_json(job_.val_data), tok, eo);
    if (!job_.feature_cache.empty() && !resume_from_) open_base_scores();
  }
  trainer_ = std::make_unique<Trainer>(model_, groups_, p_, *loader_);
  feature_cache_ = open_feature_cache(job_.feature_cache, p_, model_,
                                      PreprocessKey{lo.image_size, lo.pad_to_square});
  if (feature_cache_) {
    trainer_->use_feature_cache(feature_cache_.get(), std::move(train_images));
    if (evaluator_) evaluator_->use_feature_cache(feature_cache_.get());
  }
}

void JobRun::resume() {
  if (!resume_from_) {
    evaluate(0);  // the base model's own score, before any update
    return;
  }
  stage_ = "checkpoint";
  json state = read_json_file(resume_from_->path + "/" + CheckpointManager::kStateFile);
  trainer_->restore(resume_from_->path, state);
  step_ = trainer_->steps_done();
  last_eval_ = state.value("last_eval", json::object());
  best_ = state.value("best", json(nullptr));
  reached_rung();  // the rungs behind the checkpoint were evaluated before it
}

bool JobRun::after_step(const StepResult& r) {
  step_ = r.step;
  log_window_.add(r);
  eval_window_.add(r);
  const bool last = r.step == p_.max_steps;
  const bool rung = reached_rung();
  if (r.step % p_.logging_steps == 0 || last) {
    ProgressEvent progress;
    progress.step = r.step;
    progress.metrics = {{"epoch", static_cast<double>(trainer_->epoch())},
                        {"samples_seen", static_cast<double>(trainer_->samples_seen())},
                        {"tokens_seen", static_cast<double>(trainer_->tokens_seen())},
                        {"train_loss", log_window_.mean()},
                        {"lr", r.lr},
                        {"grad_norm", r.grad_norm},
                        {"tokens_per_s", log_window_.tokens_per_s()},
                        {"mem_mb", resident_memory_mb()},
                        {"data_wait_s", loader_->seconds_waited()}};
    events_.emit(progress);
    log_window_.clear();
  }
  check_learning(r);
  if (last || rung || (p_.eval_every > 0 && r.step % p_.eval_every == 0)) {
    evaluate(r.step);
    json metrics = last_eval_;
    metrics["train_loss"] = eval_window_.mean();
    eval_window_.clear();
    final_metrics_ = metrics;
    save_checkpoint(r.step, metrics);
  } else if (stop_wanted()) {
    save_checkpoint(r.step, json::object());
  }
  if (stop_wanted() && !last) {
    stop();
    return false;
  }
  return true;
}

// The learning check at its step; with stop_if_not_learning a failed check ends the job.
void JobRun::check_learning(const StepResult& r) {
  if (!learning_check_ || !learning_check_->record(r)) return;
  const std::string stage = stage_;
  stage_ = "learning_check";
  const LearningCheckEvent check = learning_check_->run(model_, r);
  events_.emit(check);
  if (!check.passed) {
    std::cerr << "sweep-worker: " << job_.job_id << ": not learning at step " << r.step << ": "
              << check.reason << "\n";
    if (p_.stop_if_not_learning)
      throw NotLearningError("not learning at step " + std::to_string(r.step) + ": " +
                             check.reason +
                             "\n  hint: raise learning_rate, check that the answers are "
                             "supervised (sweep check-data), or set stop_if_not_learning: false");
  }
  stage_ = stage;
}

// Early stopping's rungs: true once per step that brings the tokens seen to or past the next
// rung(s). A resumed run starts past the rungs its checkpoint had reached.
bool JobRun::reached_rung() {
  const auto& rungs = job_.eval_at_tokens;
  bool reached = false;
  while (next_rung_ < rungs.size() && trainer_->tokens_seen() >= rungs[next_rung_]) {
    reached = true;
    ++next_rung_;
  }
  return reached;
}

void JobRun::open_base_scores() {
  const EvalOptions& o = evaluator_->options();
  const json settings = {{"image_size", o.image_size},
                         {"pad_to_square", o.pad_to_square},
                         {"max_length", o.max_length},
                         {"max_new_tokens", o.max_new_tokens},
                         {"batch_size", o.batch_size},
                         {"max_samples", o.max_samples},
                         {"seed", o.seed},
                         {"generate", o.generate},
                         {"image_folder", o.image_folder}};
  try {
    const std::string dtype = c10::toString(resolve_base_dtype(p_.precision, device_));
    base_scores_ = std::make_unique<BaseScoreCache>(
        job_.feature_cache,
        base_score_key(job_.base_model, job_.val_data, evaluator_->image_paths(), settings, dtype,
                       device_.is_cuda() ? "cuda" : "cpu"));
  } catch (const std::exception& e) {
    std::cerr << "sweep-worker: step 0 is evaluated without the shared base-model score ("
              << e.what() << ")\n";
  }
}

// Step 0: the base model's score, from the sweep's cache when another job stored it.
EvalResult JobRun::evaluate_base() {
  if (base_scores_) {
    const auto started = std::chrono::steady_clock::now();
    if (std::optional<BaseScore> hit = base_scores_->load()) {
      EvalResult r;
      r.val_loss = hit->val_loss;
      r.val_token_acc = hit->val_token_acc;
      r.val_exact_match = hit->val_exact_match;
      r.val_samples = hit->val_samples;
      r.val_tokens = hit->val_tokens;
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::cerr << "sweep-worker: step 0 scored from " << base_scores_->path() << "\n";
      return r;
    }
  }
  EvalResult r = evaluator_->run(model_);
  if (base_scores_) {
    base_scores_->save(
        BaseScore{r.val_loss, r.val_token_acc, r.val_exact_match, r.val_samples, r.val_tokens});
  }
  return r;
}

void JobRun::evaluate(int step) {
  if (!evaluator_) return;
  stage_ = "eval";
  EvalResult r = step == 0 ? evaluate_base() : evaluator_->run(model_);
  last_eval_ = r.to_json();
  EvalEvent event;
  event.step = step;
  event.metrics = {{"val_loss", r.val_loss},
                   {"val_token_acc", r.val_token_acc},
                   {"val_exact_match", r.val_exact_match}};
  event.val_samples = r.val_samples;
  event.seconds = r.seconds;
  event.samples_seen = trainer_->samples_seen();
  event.tokens_seen = trainer_->tokens_seen();
  for (size_t i = 0; i < r.predictions.size(); ++i) {
    const SampleScore& p = r.predictions[i];
    event.predictions.push_back({static_cast<int64_t>(i), p.id, p.prompt, p.answer, p.prediction});
  }
  events_.emit(event);
  const auto& metric = job_.objective_metric;
  if (!last_eval_.contains(metric) || step == 0) return;  // step 0 has no checkpoint to point at
  const double v = last_eval_[metric].get<double>();
  const bool better =
      best_.is_null() || (job_.objective_mode == "max" ? v > best_[metric].get<double>()
                                                       : v < best_[metric].get<double>());
  if (better) {
    best_ = last_eval_;
    best_["step"] = step;
  }
}

void JobRun::save_checkpoint(int step, const json& metrics) {
  stage_ = "checkpoint";
  const bool full = p_.mode == "full";
  std::vector<std::string> deleted;
  CheckpointInfo info = checkpoints_->save(
      step, metrics, checkpoint_state(),
      [&](const std::string& dir) {
        if (full) {
          model::save_llava(model_, dir);  // first: it replaces the (empty) directory
          copy_model_companions(job_.base_model, dir, model_->config());
        } else {
          model::save_adapter(model_, lora_, dir);
        }
        trainer_->save_files(dir);
        write_manifest(dir, checkpoint_manifest(step, metrics));
      },
      &deleted);
  events_.emit(CheckpointEvent{step, info.path, metrics_from_json(metrics), deleted});
}

json JobRun::checkpoint_state() const {
  json state = trainer_->state();
  state["job_id"] = job_.job_id;
  state["mode"] = p_.mode;
  state["params"] = p_.to_json();
  state["objective"] = {{"metric", job_.objective_metric}, {"mode", job_.objective_mode}};
  state["last_eval"] = last_eval_;
  state["best"] = best_;
  return state;
}

json JobRun::checkpoint_manifest(int step, const json& metrics) const {
  return {{"job_id", job_.job_id},
          {"mode", p_.mode},
          {"base_model",
           {{"path", fs::absolute(job_.base_model).lexically_normal().string()},
            {"fingerprint", base_fingerprint_.to_json()}}},
          {"conversation_template", "vicuna_v1"},
          {"lora", p_.mode == "lora" ? lora_.to_adapter_config() : json(nullptr)},
          {"params", p_.to_json()},
          {"data", data_fingerprint_},
          {"step", step},
          {"metrics", metrics.is_object() ? metrics : json::object()}};
}

int JobRun::stop() {
  auto latest = checkpoints_->latest();
  StoppedEvent stopped;
  stopped.step = trainer_->steps_done();
  if (latest) stopped.checkpoint = latest->path;
  events_.emit(stopped);
  return kExitOk;
}

void JobRun::finish() {
  const json final = final_metrics_.empty() ? last_eval_ : final_metrics_;
  auto best_ckpt = checkpoints_->best();
  if (!best_ckpt) best_ckpt = checkpoints_->latest();
  FinishedEvent finished;
  finished.step = trainer_->steps_done();
  finished.final_metrics = metrics_from_json(final);
  if (!best_.is_null()) {
    finished.best = BestEvaluation{best_["step"].get<int64_t>(), metrics_from_json(best_)};
  }
  if (best_ckpt) finished.best_checkpoint = best_ckpt->path;
  events_.emit(finished);
}

int report_failure(JobRun& run, EventWriter& events) {
  auto emit = [&](const FailedEvent& failed) {
    try {
      events.emit(failed);
    } catch (const std::exception& write_error) {
      std::cerr << "sweep-worker: cannot write the failed event: " << write_error.what() << "\n";
    }
  };
  // The final event of a failed attempt; the exit code tells the orchestrator the rest.
  auto failed = [&](const std::string& message, int exit_code) {
    std::cerr << "sweep-worker: " << run.job().job_id << ": " << run.stage()
              << " failed: " << message << "\n";
    FailedEvent event{run.stage(), message, /*diverged=*/false,
                      /*out_of_memory=*/exit_code == kExitOutOfMemory};
    event.disk_full = exit_code == kExitDiskFull;
    event.bad_input = exit_code == kExitBadInput;
    emit(event);
    return exit_code;
  };
  auto out_of_memory = [&](const std::string& message) {
    return failed("out of memory on " + run.job().device + ": " + message +
                      memory_estimate_note(run.job()) +
                      "\n  hint: lower batch_size (raise gradient_accumulation_steps to keep the "
                      "global batch), set gradient_checkpointing: true, or lower "
                      "model_max_length; `sweep plan` estimates each job's peak memory",
                  kExitOutOfMemory);
  };
  try {
    throw;
  } catch (const DivergedError& e) {
    emit(FailedEvent{"train", e.what(), /*diverged=*/true});
    std::cerr << "sweep-worker: " << run.job().job_id << ": diverged: " << e.what() << "\n";
    return kExitDiverged;
  } catch (const NotLearningError& e) {
    FailedEvent not_learning{"learning_check", e.what()};
    not_learning.not_learning = true;
    emit(not_learning);
    std::cerr << "sweep-worker: " << run.job().job_id << ": stopped: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const c10::OutOfMemoryError& e) {
    return out_of_memory(message_of(e));
  } catch (const std::bad_alloc& e) {
    return out_of_memory(message_of(e));
  } catch (const std::exception& e) {
    if (is_host_allocation_failure(e)) return out_of_memory(message_of(e));
    // Before the stage rule: a full disk while loading (lora_targets.json) is not bad input.
    if (is_disk_full(e)) return failed(message_of(e), kExitDiskFull);
    return failed(message_of(e), is_bad_input(e, run.stage()) ? kExitBadInput : kExitInternal);
  } catch (...) {
    return failed("unknown exception", kExitInternal);
  }
}

}  // namespace sweep::train
