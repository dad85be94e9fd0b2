// events.jsonl: the append-only channel from a worker to the orchestrator (docs/architecture.md,
// docs/worker-protocol.md). One JSON object per line, flushed per event:
//   {"seq": 7, "time": 1700000000.25, "type": "progress", "attempt": 1, ...fields}
// `seq` grows by one per event across all attempts of a job, so re-reading a file is idempotent.
//
// This header is the one definition of the event types: one struct per type below, and its JSON
// form (to_json/from_json in events.cpp) is the only code that names its fields. The fields sit
// flat beside the envelope (seq, time, type, attempt), as they always have.
//
// Metrics (`Metrics` maps) are kept apart from bookkeeping fields: only metrics become rows of
// the results database. A NaN/inf metric is written as null and read back as NaN.
// LibTorch-free.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace sweep {

// Metric name -> value.
using Metrics = std::map<std::string, double>;

// The worker is running: where, and from which step.
struct StartedEvent {
  static constexpr const char* kType = "started";
  int64_t pid = 0;
  std::string host;
  std::string device;  // "cpu", "cuda:0"
  int threads = 0;
  std::map<std::string, std::string> versions;      // {"sweep": "0.1.0", "torch": "2.1.0"}
  std::optional<int64_t> resumed_from_step;         // null for a fresh start
  std::optional<std::string> cuda_visible_devices;  // as the worker saw it; omitted when unset
};

// Training progress every `logging_steps`.
//   metrics: train_loss (mean since the last progress event; NaN marks divergence), lr,
//   grad_norm, tokens_per_s, mem_mb, epoch, samples_seen, tokens_seen, data_wait_s, and any
//   other number a worker reports. One `metrics` row each (loss curves).
struct ProgressEvent {
  static constexpr const char* kType = "progress";
  int64_t step = 0;
  Metrics metrics;
};

// One generated answer of an evaluation beside its reference: {"sample": 0, "id": "000123",
// "prompt": "...", "reference": "...", "prediction": "..."}.
struct EvalPrediction {
  int64_t sample = 0;      // position in the evaluated subset
  std::string sample_id;   // the sample's id in the validation file ("id")
  std::string prompt;      // the first human turn
  std::string reference;   // the reference answer
  std::string prediction;  // the model's greedy answer
};

// An evaluation on the validation set.
//   metrics: val_loss, val_token_acc, val_exact_match (and any other number a worker reports);
//   one `eval_metrics` row each. val_samples and seconds describe the run, they are not metrics.
//   predictions: a few generated answers with their references (one `predictions` row each);
//   omitted by workers that keep none.
struct EvalEvent {
  static constexpr const char* kType = "eval";
  int64_t step = 0;
  Metrics metrics;
  std::optional<int64_t> val_samples;  // samples scored
  std::optional<double> seconds;       // how long the evaluation took
  // Training done when the model was evaluated (early stopping places its rungs by tokens seen);
  // omitted by workers that do not count them.
  std::optional<int64_t> samples_seen;
  std::optional<int64_t> tokens_seen;
  std::vector<EvalPrediction> predictions;
};

// A checkpoint was written to `path`; the retention policy (save_top_k) removed `deleted`.
struct CheckpointEvent {
  static constexpr const char* kType = "checkpoint";
  int64_t step = 0;
  std::string path;  // absolute checkpoint directory
  Metrics metrics;   // the evaluation at `step` plus train_loss; empty without an evaluation
  std::vector<std::string> deleted;  // checkpoint directories removed from disk by this save
};

// The best evaluation of a run (after step 0), in `finished`: {"step": 40, "val_loss": ...}.
struct BestEvaluation {
  int64_t step = 0;
  Metrics metrics;
};

// The run completed max_steps.
struct FinishedEvent {
  static constexpr const char* kType = "finished";
  int64_t step = 0;
  Metrics final_metrics;  // "final": the last evaluation plus train_loss
  std::optional<BestEvaluation> best;
  std::optional<std::string> best_checkpoint;  // the best kept checkpoint, else the latest
};

// SIGTERM: stopped cleanly after writing a checkpoint; resumable.
struct StoppedEvent {
  static constexpr const char* kType = "stopped";
  int64_t step = 0;
  std::optional<std::string> checkpoint;
};

// The run failed at `stage` (load_model, load_data, train, eval, checkpoint).
struct FailedEvent {
  static constexpr const char* kType = "failed";
  std::string stage;
  std::string message;
  bool diverged = false;  // NaN/inf loss: final, never retried
  // The job does not fit the device's memory at its settings (CUDA OOM, a failed host
  // allocation): final as `infeasible`, never retried.
  bool out_of_memory = false;
  // The learning check failed and the job asked to stop then (stop_if_not_learning; stage
  // learning_check): final as failed, never retried (the same settings learn nothing again).
  bool not_learning = false;
  // No space left where the worker writes (ENOSPC/EDQUOT); the message names the path. Final
  // as failed, not retried blindly: `sweep retry` once space is freed (docs/running.md).
  bool disk_full = false;
  // The job's input can only fail again (a truncated model file, a corrupt image): final as
  // failed, never retried.
  bool bad_input = false;
};

// Which modules got a LoRA adapter, once per start (before training): the count per part
// ("language_model", "projector", "vision_tower") and the file that lists them by name
// (<run_dir>/lora_targets.json).
struct LoraTargetsEvent {
  static constexpr const char* kType = "lora_targets";
  std::map<std::string, int64_t> counts;
  int64_t left_out = 0;  // modules PEFT's name rule also matches but the job did not ask for
  std::string path;      // absolute path of lora_targets.json
};

// The learning check after `step` steps (learning_check_steps): does the adapter move? passed
// needs a LoRA B norm > 0, a LoRA gradient norm > 0 and a train loss that moved (docs/worker.md,
// "Learning check"); `reason` says which failed (empty when it passed). The norms are null in
// mode full (no adapters; the gradient norm is then the whole step's).
struct LearningCheckEvent {
  static constexpr const char* kType = "learning_check";
  int64_t step = 0;
  bool passed = true;
  std::optional<double> lora_b_norm, lora_grad_norm, loss_first, loss_last;
  std::string reason;
};

// Liveness while no other event is due.
struct HeartbeatEvent {
  static constexpr const char* kType = "heartbeat";
  int64_t step = 0;
};

// A type this version does not know (a newer or third-party worker's own): kept only so that its
// seq counts; ignored otherwise.
struct UnknownEvent {
  std::string type;
};

using EventPayload = std::variant<StartedEvent, ProgressEvent, EvalEvent, CheckpointEvent,
                                  FinishedEvent, StoppedEvent, FailedEvent, HeartbeatEvent,
                                  LoraTargetsEvent, LearningCheckEvent, UnknownEvent>;

// A parsed line: the envelope plus the typed payload.
struct Event {
  int64_t seq = 0;
  double time = 0;             // seconds since the Unix epoch; 0 when the line has none
  std::optional<int> attempt;  // nullopt when the line has none (the reader's attempt applies)
  EventPayload payload;

  // "started", "progress", ..., or the unknown type's name.
  std::string type() const;
  // The payload as `T`, or nullptr when it is another type.
  template <typename T>
  const T* as() const {
    return std::get_if<T>(&payload);
  }
};

// JSON forms, defined once. from_json throws Failure (kUser) naming the event type and the field
// at fault; envelope keys and unknown keys that are not metrics are ignored.
void to_json(nlohmann::json& j, const StartedEvent& e);
void from_json(const nlohmann::json& j, StartedEvent& e);
void to_json(nlohmann::json& j, const ProgressEvent& e);
void from_json(const nlohmann::json& j, ProgressEvent& e);
void to_json(nlohmann::json& j, const EvalEvent& e);
void from_json(const nlohmann::json& j, EvalEvent& e);
void to_json(nlohmann::json& j, const CheckpointEvent& e);
void from_json(const nlohmann::json& j, CheckpointEvent& e);
void to_json(nlohmann::json& j, const FinishedEvent& e);
void from_json(const nlohmann::json& j, FinishedEvent& e);
void to_json(nlohmann::json& j, const StoppedEvent& e);
void from_json(const nlohmann::json& j, StoppedEvent& e);
void to_json(nlohmann::json& j, const FailedEvent& e);
void from_json(const nlohmann::json& j, FailedEvent& e);
void to_json(nlohmann::json& j, const HeartbeatEvent& e);
void from_json(const nlohmann::json& j, HeartbeatEvent& e);
void to_json(nlohmann::json& j, const LoraTargetsEvent& e);
void from_json(const nlohmann::json& j, LoraTargetsEvent& e);
void to_json(nlohmann::json& j, const LearningCheckEvent& e);
void from_json(const nlohmann::json& j, LearningCheckEvent& e);
// The whole line: envelope and fields.
void to_json(nlohmann::json& j, const Event& e);

// A metrics map as a JSON object (NaN/inf as null), e.g. for the checkpoints.metrics column.
nlohmann::json metrics_to_json(const Metrics& metrics);
// The metrics of a JSON object such as {"val_loss": 0.7, "val_samples": 200, "step": 40}:
// numbers (null = NaN), without evaluation bookkeeping (step, val_samples, seconds). Throws
// Failure (kUser) naming an entry that is not a number.
Metrics metrics_from_json(const nlohmann::json& object);

// Decodes one event object. Throws Failure (kUser) naming the field at fault.
Event decode_event(const nlohmann::json& object);
// Parses one line. The error (kUser) names the field at fault; the caller adds the line.
Result<Event> parse_event(const std::string& line);

// Appends events to a file. Continues the sequence of an existing file. Thread-safe.
class EventWriter {
 public:
  // Throws Failure (kIo) naming the file when it cannot be opened for appending.
  EventWriter(std::string path, int attempt);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Writes one line (seq, time, type, attempt and the event's fields) and hands it to the OS.
  // Throws FileError (common/file_system.h) when the write fails; the file is then as before.
  void emit(const StartedEvent& e) { write(StartedEvent::kType, e); }
  void emit(const ProgressEvent& e) { write(ProgressEvent::kType, e); }
  void emit(const EvalEvent& e) { write(EvalEvent::kType, e); }
  void emit(const CheckpointEvent& e) { write(CheckpointEvent::kType, e); }
  void emit(const FinishedEvent& e) { write(FinishedEvent::kType, e); }
  void emit(const StoppedEvent& e) { write(StoppedEvent::kType, e); }
  void emit(const FailedEvent& e) { write(FailedEvent::kType, e); }
  void emit(const HeartbeatEvent& e) { write(HeartbeatEvent::kType, e); }
  void emit(const LoraTargetsEvent& e) { write(LoraTargetsEvent::kType, e); }
  void emit(const LearningCheckEvent& e) { write(LearningCheckEvent::kType, e); }
  int64_t last_seq() const;

 private:
  void write(const char* type, const nlohmann::json& fields);

  struct Impl;
  Impl* impl_;
};

// Reads the complete lines appended to a file since the last poll; a trailing line without a
// newline (a write in progress) is left for the next poll. Missing file = no events yet.
class EventTail {
 public:
  explicit EventTail(std::string path, uint64_t offset = 0);
  // Malformed lines are skipped and described in `errors` (if given): kUser errors whose message
  // starts with "<path>:<line>: ".
  std::vector<Event> poll(std::vector<Error>* errors = nullptr);
  uint64_t offset() const { return offset_; }

 private:
  int64_t first_line();  // 1-based number of the line at offset_ (counted once when unknown)

  std::string path_;
  uint64_t offset_;
  std::optional<int64_t> line_;  // line number at offset_, once counted
};

double unix_time_now();

}  // namespace sweep
