// A stand-in for sweep-worker that speaks the worker protocol (docs/worker-protocol.md) without
// training anything, so the run loop can be tested in seconds. Usage: fake_worker JOB.json.
//
// What it does is chosen per job by a plan file named in $FAKE_WORKER_PLAN: a JSON object whose
// keys are the job's `seed` param (the sweep's grid varies `seed`, a real training key, so every
// job can get its own behaviour without adding keys to the training-key table):
//   {"default": {...}, "7": {"mode": "fail", "fail_attempts": 1}, ...}
// Fields (all optional):
//   mode            succeed | fail | crash | hang | nan      (default succeed)
//   fail_attempts   fail/crash only on attempts <= this (then succeed); default: every attempt
//   fail_at_step    step at which fail/crash/nan happens (default max_steps / 2)
//   step_sleep_ms   sleep per step (a slow writer), default 0
//   ignore_term     true: SIGTERM is ignored (hang only), so only SIGKILL ends it
//   val_loss        the final val_loss (default 1 + seed / 1000); evals decrease towards it
// Steps come from params.max_steps, evaluations from params.eval_every (0: only at the end).
// Each eval writes a checkpoint directory checkpoints/step-N. With resume it continues after the
// newest checkpoint.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <thread>

#include "protocol/events.h"
#include "protocol/job_file.h"

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_term{false};
void on_term(int) { g_term = true; }

nlohmann::json load_plan(int64_t seed) {
  const char* path = std::getenv("FAKE_WORKER_PLAN");
  nlohmann::json plan = nlohmann::json::object();
  if (path && *path) {
    std::ifstream in(path);
    plan = nlohmann::json::parse(in, nullptr, false);
    if (plan.is_discarded()) plan = nlohmann::json::object();
  }
  nlohmann::json out = plan.value("default", nlohmann::json::object());
  std::string key = std::to_string(seed);
  if (plan.contains(key)) out.update(plan[key]);
  return out;
}

int64_t latest_checkpoint(const std::string& dir) {
  int64_t best = 0;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) == 0) best = std::max<int64_t>(best, std::atoll(name.c_str() + 5));
  }
  return best;
}

std::string write_checkpoint(const sweep::JobFile& job, int64_t step) {
  std::string dir = job.checkpoints_dir() + "/step-" + std::to_string(step);
  fs::create_directories(dir);
  std::ofstream(dir + "/adapter_config.json") << "{\"step\": " << step << "}\n";
  return dir;
}

double val_loss_at(double final_loss, int64_t step, int64_t max_steps) {
  return final_loss + static_cast<double>(max_steps - step) / static_cast<double>(max_steps);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fake_worker JOB.json\n";
    return 1;
  }
  sweep::JobFile job = sweep::JobFile::read(argv[1]);
  int64_t seed = job.params.value("seed", int64_t{0});
  int64_t max_steps = job.params.value("max_steps", int64_t{10});
  int64_t eval_every = job.params.value("eval_every", int64_t{0});
  nlohmann::json plan = load_plan(seed);
  std::string mode = plan.value("mode", "succeed");
  int fail_attempts = plan.value("fail_attempts", 1000000);
  if ((mode == "fail" || mode == "crash") && job.attempt > fail_attempts) mode = "succeed";
  int64_t fail_at = plan.value("fail_at_step", std::max<int64_t>(1, max_steps / 2));
  int sleep_ms = plan.value("step_sleep_ms", 0);
  double final_loss = plan.value("val_loss", 1.0 + static_cast<double>(seed) / 1000.0);
  if (!(mode == "hang" && plan.value("ignore_term", false)))
    ::signal(SIGTERM, on_term);
  else
    ::signal(SIGTERM, SIG_IGN);

  sweep::EventWriter events(job.events_path(), job.attempt);
  int64_t start = job.resume ? latest_checkpoint(job.checkpoints_dir()) : 0;
  sweep::StartedEvent started;
  started.pid = ::getpid();
  started.host = "fake";
  started.device = job.device;
  started.threads = job.threads;
  started.versions = {{"fake_worker", "1"}};
  started.resumed_from_step = start;
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  started.cuda_visible_devices = visible ? visible : "";
  events.emit(started);
  for (int64_t step = start + 1; step <= max_steps; ++step) {
    if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    if (mode == "hang" && step == fail_at) {
      while (!g_term) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (g_term) {
      std::string ckpt = write_checkpoint(job, step - 1);
      events.emit(sweep::StoppedEvent{step - 1, ckpt});
      return 0;
    }
    bool nan = mode == "nan" && step >= fail_at;
    double loss = nan ? std::numeric_limits<double>::quiet_NaN() : 2.0 / static_cast<double>(step);
    events.emit(sweep::ProgressEvent{step,
                                     {{"epoch", 0.0},
                                      {"samples_seen", step * 8.0},
                                      {"tokens_seen", step * 800.0},
                                      {"train_loss", loss},
                                      {"lr", 1e-4},
                                      {"grad_norm", 1.0},
                                      {"tokens_per_s", 1000.0},
                                      {"mem_mb", 10.0}}});
    if (nan) {
      events.emit(sweep::FailedEvent{"train", "loss is NaN at step " + std::to_string(step),
                                     /*diverged=*/true});
      return 3;
    }
    if (mode == "fail" && step == fail_at) {
      events.emit(sweep::FailedEvent{"train", "planned failure at step " + std::to_string(step),
                                     /*diverged=*/false});
      return 2;
    }
    if (mode == "crash" && step == fail_at) {
      std::cerr << "fake_worker: planned crash at step " << step << "\n";
      return 7;
    }
    if ((eval_every > 0 && step % eval_every == 0) || step == max_steps) {
      double vl = val_loss_at(final_loss, step, max_steps);
      sweep::EvalEvent eval;
      eval.step = step;
      eval.metrics = {
          {"val_loss", vl}, {"val_token_acc", 1.0 / (1.0 + vl)}, {"val_exact_match", 0.5}};
      eval.val_samples = 4;
      eval.seconds = 0.01;
      events.emit(eval);
      std::string ckpt = write_checkpoint(job, step);
      events.emit(sweep::CheckpointEvent{step, ckpt, {{"val_loss", vl}}, {}});
    }
  }
  double vl = val_loss_at(final_loss, max_steps, max_steps);
  sweep::FinishedEvent finished;
  finished.step = max_steps;
  finished.final_metrics = {{"val_loss", vl}};
  finished.best = sweep::BestEvaluation{max_steps, {{"val_loss", vl}}};
  finished.best_checkpoint = job.checkpoints_dir() + "/step-" + std::to_string(max_steps);
  events.emit(finished);
  return 0;
}
