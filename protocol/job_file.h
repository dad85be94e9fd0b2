// job.json: everything one worker process needs to run one job, written by `sweep run` into the
// job's run directory and read by `sweep-worker JOB.json` (docs/worker-protocol.md). Paths in it
// are absolute and already resolved (no `builtin:` prefixes), so any program that speaks the
// protocol can run it. LibTorch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/file_system.h"  // write_file_atomic, for the writers of job.json

namespace sweep {

struct JobFile {
  static constexpr int kSchema = 1;

  std::string sweep;       // sweep name
  std::string job_id;      // stable hash of the job's result-deciding settings
  int attempt = 1;         // 1 for the first run, +1 per retry
  std::string run_dir;     // the job's directory: events.jsonl, checkpoints/, logs
  std::string base_model;  // model directory: config.json + *.safetensors + tokenizer.model
  std::string train_data;  // LLaVA JSON
  std::string val_data;    // LLaVA JSON (may be empty: no evaluation)
  std::string image_folder;
  // data.max_image_pixels: an image whose header claims more pixels is refused before it is
  // decoded (bad input); 0 (left out of job.json): check-data's default
  // (data::kDefaultMaxImagePixels, Pillow's limit).
  int max_image_pixels = 0;
  nlohmann::json params = nlohmann::json::object();  // resolved TrainParams keys
  std::string objective_metric = "val_loss";
  std::string objective_mode = "min";  // min | max
  int threads = 1;                     // intra-op threads the worker must use
  std::string device = "cpu";          // cpu | cuda (the orchestrator sets CUDA_VISIBLE_DEVICES)
  bool resume = true;                  // continue from the latest checkpoint in run_dir if any
  double heartbeat_seconds = 10.0;
  // Directory of the vision-feature cache shared by the sweep's jobs; empty: no cache. Written to
  // job.json only when set.
  std::string feature_cache;
  // Early stopping's rungs (docs/sweep-file.md, early_stopping): the worker evaluates, and keeps
  // a checkpoint, at the first step whose training tokens seen reach each of these counts, besides
  // every eval_every steps. Ascending; empty: none. Written to job.json only when set.
  std::vector<int64_t> eval_at_tokens;

  nlohmann::json to_json() const;
  // Throws Failure (common/failure.h) naming the missing or mistyped key.
  static JobFile from_json(const nlohmann::json& j);
  // Throws Failure (common/failure.h) naming the file.
  static JobFile read(const std::string& path);
  // Writes to a temp file in the same directory and renames it into place.
  void write(const std::string& path) const;

  std::string events_path() const { return run_dir + "/events.jsonl"; }
  std::string checkpoints_dir() const { return run_dir + "/checkpoints"; }
};

// The most intra-op threads a job may use here: this machine's hardware threads
// (std::thread::hardware_concurrency(), at least 1).
int max_job_threads();
// Throws Failure (kUser) naming `threads` and the range when job.threads is outside
// [1, max_job_threads()]: what a worker checks before it runs a job. JobFile::from_json checks
// only [1, 2^31-1], since the orchestrator may read a job file written for another machine.
void check_threads_for_this_machine(const JobFile& job);

}  // namespace sweep
