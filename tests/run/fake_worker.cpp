// A stand-in for sweep-worker that speaks the worker protocol (docs/worker-protocol.md) without
// training anything, so the run loop can be tested in seconds. Usage: fake_worker JOB.json...
// With several job files (a pack) it runs every job's plan in one process, one step of each in
// turn, and stops one job when its run directory holds a STOP file.
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
// newest checkpoint. In a pack, fail and nan end only their job; crash ends the process (exit 7)
// and every job with it; the process exits 0 once every job wrote its final event.
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
#include <memory>
#include <thread>
#include <vector>

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

// One job of the process and where it stands.
struct Run {
  sweep::JobFile job;
  std::unique_ptr<sweep::EventWriter> events;
  std::string mode;
  int64_t max_steps = 10, eval_every = 0, fail_at = 1, step = 1;
  int sleep_ms = 0;
  bool ignore_term = false;
  double final_loss = 1;
  bool done = false;
  int code = 0;
};

Run start_run(const std::string& path) {
  Run r;
  r.job = sweep::JobFile::read(path);
  int64_t seed = r.job.params.value("seed", int64_t{0});
  r.max_steps = r.job.params.value("max_steps", int64_t{10});
  r.eval_every = r.job.params.value("eval_every", int64_t{0});
  nlohmann::json plan = load_plan(seed);
  r.mode = plan.value("mode", "succeed");
  int fail_attempts = plan.value("fail_attempts", 1000000);
  if ((r.mode == "fail" || r.mode == "crash") && r.job.attempt > fail_attempts) r.mode = "succeed";
  r.fail_at = plan.value("fail_at_step", std::max<int64_t>(1, r.max_steps / 2));
  r.sleep_ms = plan.value("step_sleep_ms", 0);
  r.final_loss = plan.value("val_loss", 1.0 + static_cast<double>(seed) / 1000.0);
  r.ignore_term = r.mode == "hang" && plan.value("ignore_term", false);
  r.events = std::make_unique<sweep::EventWriter>(r.job.events_path(), r.job.attempt);
  int64_t start = r.job.resume ? latest_checkpoint(r.job.checkpoints_dir()) : 0;
  r.step = start + 1;
  sweep::StartedEvent started;
  started.pid = ::getpid();
  started.host = "fake";
  started.device = r.job.device;
  started.threads = r.job.threads;
  started.versions = {{"fake_worker", "1"}};
  started.resumed_from_step = start;
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  started.cuda_visible_devices = visible ? visible : "";
  r.events->emit(started);
  return r;
}

void end_run(Run& r, int code) {
  r.done = true;
  r.code = code;
}

void finish_run(Run& r) {
  double vl = val_loss_at(r.final_loss, r.max_steps, r.max_steps);
  sweep::FinishedEvent finished;
  finished.step = r.max_steps;
  finished.final_metrics = {{"val_loss", vl}};
  finished.best = sweep::BestEvaluation{r.max_steps, {{"val_loss", vl}}};
  finished.best_checkpoint = r.job.checkpoints_dir() + "/step-" + std::to_string(r.max_steps);
  r.events->emit(finished);
  end_run(r, 0);
}

// One step of `r`; false when the process must end now (a planned crash).
bool step_run(Run& r, bool packed) {
  const int64_t step = r.step;
  if (step > r.max_steps) {
    finish_run(r);
    return true;
  }
  std::error_code ec;
  bool stop = (g_term && !r.ignore_term) ||
              (packed && !r.ignore_term && fs::exists(r.job.run_dir + "/STOP", ec));
  if (r.mode == "hang" && step == r.fail_at && !stop) return true;  // waits for a stop
  if (stop) {
    std::string ckpt = write_checkpoint(r.job, step - 1);
    r.events->emit(sweep::StoppedEvent{step - 1, ckpt});
    end_run(r, 0);
    return true;
  }
  if (r.sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(r.sleep_ms));
  bool nan = r.mode == "nan" && step >= r.fail_at;
  double loss = nan ? std::numeric_limits<double>::quiet_NaN() : 2.0 / static_cast<double>(step);
  r.events->emit(sweep::ProgressEvent{step,
                                      {{"epoch", 0.0},
                                       {"samples_seen", step * 8.0},
                                       {"tokens_seen", step * 800.0},
                                       {"train_loss", loss},
                                       {"lr", 1e-4},
                                       {"grad_norm", 1.0},
                                       {"tokens_per_s", 1000.0},
                                       {"mem_mb", 10.0}}});
  if (nan) {
    r.events->emit(sweep::FailedEvent{"train", "loss is NaN at step " + std::to_string(step),
                                      /*diverged=*/true});
    end_run(r, 3);
    return true;
  }
  if (r.mode == "fail" && step == r.fail_at) {
    r.events->emit(sweep::FailedEvent{"train", "planned failure at step " + std::to_string(step),
                                      /*diverged=*/false});
    end_run(r, 2);
    return true;
  }
  if (r.mode == "crash" && step == r.fail_at) {
    std::cerr << "fake_worker: planned crash at step " << step << "\n";
    return false;
  }
  if ((r.eval_every > 0 && step % r.eval_every == 0) || step == r.max_steps) {
    double vl = val_loss_at(r.final_loss, step, r.max_steps);
    sweep::EvalEvent eval;
    eval.step = step;
    eval.metrics = {
        {"val_loss", vl}, {"val_token_acc", 1.0 / (1.0 + vl)}, {"val_exact_match", 0.5}};
    eval.val_samples = 4;
    eval.seconds = 0.01;
    r.events->emit(eval);
    std::string ckpt = write_checkpoint(r.job, step);
    r.events->emit(sweep::CheckpointEvent{step, ckpt, {{"val_loss", vl}}, {}});
  }
  ++r.step;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: fake_worker JOB.json...\n";
    return 1;
  }
  std::vector<Run> runs;
  for (int i = 1; i < argc; ++i) runs.push_back(start_run(argv[i]));
  const bool packed = runs.size() > 1;
  bool all_ignore = true;
  for (const Run& r : runs) all_ignore = all_ignore && r.ignore_term;
  ::signal(SIGTERM, all_ignore ? SIG_IGN : on_term);
  for (;;) {
    bool busy = false;
    int64_t steps_before = 0, steps_after = 0;
    for (Run& r : runs) {
      if (r.done) continue;
      steps_before += r.step;
      if (!step_run(r, packed)) return 7;
      steps_after += r.done ? r.step + 1 : r.step;
      busy = true;
    }
    if (!busy) break;
    // Every job left waits at its hang step: wait for a stop instead of spinning.
    if (steps_after == steps_before) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return packed ? 0 : runs.front().code;
}
