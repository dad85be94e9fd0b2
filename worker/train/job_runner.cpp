#include "worker/train/job_runner.h"

#include <filesystem>
#include <iostream>
#include <memory>
#include <vector>

#include "common/file_system.h"
#include "protocol/events.h"
#include "protocol/exit_codes.h"
#include "protocol/job_file.h"
#include "protocol/pack.h"
#include "worker/model/checkpoint.h"
#include "worker/model/pack.h"
#include "worker/train/job_run.h"
#include "worker/train/model_setup.h"
#include "worker/train/pack_step.h"
#include "worker/train/stop_signal.h"

namespace sweep::train {

namespace fs = std::filesystem;

int run_job_file(const std::string& job_path) {
  JobFile job;
  std::unique_ptr<EventWriter> events;
  try {
    job = JobFile::read(job_path);
    fs::create_directories(job.run_dir);
    events = std::make_unique<EventWriter>(job.events_path(), job.attempt);
  } catch (const std::exception& e) {
    std::cerr << "sweep-worker: " << e.what() << "\n";
    return is_disk_full(e) ? kExitDiskFull : kExitBadInput;
  }
  JobRun run(job, *events);
  try {
    return run.run();
  } catch (...) {
    return report_failure(run, *events);
  }
}

namespace {

// One job of a pack: its job file, events, run, and whether it has written its final event.
struct Member {
  JobFile job;
  std::unique_ptr<EventWriter> events;
  std::unique_ptr<JobRun> run;
  bool ended = false;
};

// The final event for the exception in flight (call inside a catch block).
void fail(Member& m) {
  report_failure(*m.run, *m.events);
  m.ended = true;
}

// A failure before the member's run began (incompatible job): a `failed` event at load_model.
void fail_before_start(Member& m, const std::string& message) {
  std::cerr << "sweep-worker: " << m.job.job_id << ": " << message << "\n";
  try {
    m.events->emit(FailedEvent{"load_model", message, /*diverged=*/false});
  } catch (const std::exception& e) {
    std::cerr << "sweep-worker: cannot write the failed event: " << e.what() << "\n";
  }
  m.ended = true;
}

// Why `job` cannot share a process with `first`, if it cannot.
std::optional<std::string> pack_refusal(const JobFile& first, const JobFile& job) {
  if (!packable(job))
    return std::string("this job cannot share a worker process (mode full or lora_vision_tower)");
  if (auto mismatch = pack_mismatch(first, job))
    return "this job cannot share a worker process with job " + first.job_id + ": " + *mismatch;
  return std::nullopt;
}

}  // namespace

int run_pack(const std::vector<std::string>& job_paths) {
  std::vector<Member> members(job_paths.size());
  bool unreadable = false;
  for (size_t i = 0; i < job_paths.size(); ++i) {
    try {
      members[i].job = JobFile::read(job_paths[i]);
      fs::create_directories(members[i].job.run_dir);
      members[i].events =
          std::make_unique<EventWriter>(members[i].job.events_path(), members[i].job.attempt);
      members[i].run = std::make_unique<JobRun>(members[i].job, *members[i].events);
    } catch (const std::exception& e) {
      std::cerr << "sweep-worker: " << e.what() << "\n";
      members[i].ended = true;  // no events file to end: the orchestrator sees no final event
      unreadable = true;
    }
  }
  // The first readable job decides the shared settings; the others must match it.
  Member* first = nullptr;
  for (Member& m : members) {
    if (m.ended) continue;
    if (!first) {
      first = &m;
      if (!packable(m.job)) fail_before_start(m, *pack_refusal(m.job, m.job));
      continue;
    }
    if (auto refusal = pack_refusal(first->job, m.job)) fail_before_start(m, *refusal);
  }

  // The shared frozen base, loaded once (jobs resuming from a checkpoint load their adapters on
  // top of it).
  model::LlavaForConditionalGeneration base{nullptr};
  if (first && !first->ended) {
    const TrainParams p = TrainParams::from_json(first->job.params);
    try {
      torch::set_num_threads(std::max(1, first->job.threads));
      const torch::Device device = resolve_device(first->job.device);
      base =
          model::load_llava(first->job.base_model, resolve_base_dtype(p.precision, device), device);
      base->language_model->model->set_gradient_checkpointing(p.gradient_checkpointing);
    } catch (...) {
      for (Member& m : members)
        if (!m.ended) fail(m);  // at stage load_model
    }
  }
  std::vector<Member*> open;
  std::vector<model::LlavaForConditionalGeneration> models;
  for (Member& m : members) {
    if (m.ended) continue;
    try {
      m.run->open(&base);
      open.push_back(&m);
      models.push_back(m.run->model());
    } catch (...) {
      fail(m);
    }
  }

  if (!open.empty()) {
    std::unique_ptr<model::LanguagePack> pack;
    try {
      pack = std::make_unique<model::LanguagePack>(base, models);
    } catch (...) {
      for (Member* m : open) fail(*m);
    }
    while (pack) {
      std::vector<size_t> active;  // indexes into open (and the pack's members)
      std::vector<Trainer*> trainers;
      for (size_t i = 0; i < open.size(); ++i) {
        Member& m = *open[i];
        if (m.ended) continue;
        try {
          if (m.run->stop_wanted()) {
            m.run->stop();
            m.ended = true;
          } else if (m.run->done()) {
            m.run->finish();
            m.ended = true;
          } else {
            m.run->set_stage("train");
            active.push_back(i);
            trainers.push_back(&m.run->trainer());
          }
        } catch (...) {
          fail(m);
        }
      }
      if (active.empty()) break;
      std::vector<PackStepOutcome> outcomes;
      try {
        outcomes = pack_step(*pack, active, trainers);
      } catch (...) {  // the shared pass failed: every job of the step fails with it
        for (size_t i : active) {
          try {
            throw;
          } catch (...) {
            fail(*open[i]);
          }
        }
        continue;
      }
      for (size_t k = 0; k < active.size(); ++k) {
        Member& m = *open[active[k]];
        try {
          if (outcomes[k].diverged) throw DivergedError(*outcomes[k].diverged);
          if (!m.run->after_step(*outcomes[k].result)) m.ended = true;  // stopped
        } catch (...) {
          fail(m);
        }
      }
    }
  }
  bool all_ended = !unreadable;
  for (const Member& m : members) all_ended = all_ended && m.ended;
  return all_ended ? kExitOk : kExitInternal;
}

}  // namespace sweep::train
