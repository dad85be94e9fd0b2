// A small world for trainer tests, made once per test binary in a temp directory: a shapes
// dataset with a few images, a tokenizer trained on its corpus, and a randomly initialised tiny
// LLaVA saved as a model directory. Nothing binary is committed: every file is generated here.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "protocol/events.h"
#include "protocol/job_file.h"

namespace sweep::train::testing {

struct TrainWorld {
  std::string root;    // temp directory holding everything below
  std::string shapes;  // dataset root
  std::string images, vqa_train, vqa_val, captions;
  std::string train8;     // the first 8 VQA train samples
  std::string model_dir;  // config.json + model.safetensors + tokenizer.model
};

// Made on first call; removed at process exit.
const TrainWorld& world();

// Training parameters of a quick job (12 steps of batch 4, evaluations at 6 and 12, LoRA r 8,
// dropout 0.1), with `extra` on top.
nlohmann::json fast_params(nlohmann::json extra);

// A job over the world's 8-sample train set and its val set, run dir under the world root.
JobFile make_job(const std::string& name, nlohmann::json params);

// Writes job.json into a fresh run directory and runs the job in this process; its exit code.
int run_fresh(const JobFile& job);
// `cut`'s run directory becomes a copy of `whole`'s as a run interrupted after its checkpoint
// before `dropped_checkpoint` (e.g. "step-000012"): that checkpoint and the latest pointer are
// removed; `cut` is written as attempt 2, ready for run_job_file.
void copy_as_interrupted(const JobFile& whole, JobFile& cut, const std::string& dropped_checkpoint);

// Every event of a run's events.jsonl.
std::vector<Event> read_events(const std::string& run_dir);
// train_loss of each progress event, by step.
std::vector<std::pair<int, double>> progress_losses(const std::vector<Event>& events,
                                                    int attempt = 0 /* 0: any */);
const Event* find_event(const std::vector<Event>& events, const std::string& type);

}  // namespace sweep::train::testing
