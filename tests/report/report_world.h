// A small recorded sweep for the report tests: four jobs over lora_r x lora_alpha at two learning
// rates, with training curves, evaluations (step 0 = the base model), checkpoints, predictions
// and one failed job, in an in-memory store.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "db/store.h"

namespace sweep::testing {

struct ReportWorld {
  std::unique_ptr<Store> store;
  SweepRecord sweep;
  std::vector<int64_t> ids;  // ids[0..2] succeeded (ids[1] best), ids[3] failed
};

inline ReportWorld make_report_world(int train_steps = 40) {
  ReportWorld w;
  auto store = Store::open(":memory:");
  EXPECT_TRUE(store.ok());
  w.store = std::move(*store);
  Store& s = *w.store;
  auto sweep_id = s.upsert_sweep("tiny", "sweeps/tiny.yaml", "{}", "val_loss", "min");
  EXPECT_TRUE(sweep_id.ok());
  std::vector<NewJob> jobs;
  const int r[] = {4, 8, 4, 8};
  const double lr[] = {1e-4, 1e-4, 2e-4, 2e-4};
  for (int i = 0; i < 4; ++i) {
    jobs.push_back(NewJob{"hash" + std::to_string(i) + "abcdef", i,
                          "{\"lora_r\":" + std::to_string(r[i]) +
                              ",\"lora_alpha\":" + std::to_string(2 * r[i]) +
                              ",\"learning_rate\":" + std::to_string(lr[i]) +
                              ",\"batch_size\":8,\"note\":\"</script>\"}",
                          2.0});
  }
  EXPECT_TRUE(s.upsert_jobs(*sweep_id, jobs).ok());
  auto listed = s.list_jobs(*sweep_id);
  EXPECT_TRUE(listed.ok());
  for (const JobRecord& j : *listed) w.ids.push_back(j.id);
  const double final_loss[] = {1.5, 1.2, 1.4};
  for (int i = 0; i < 4; ++i) {
    const int64_t id = w.ids[i];
    EXPECT_TRUE(s.start_attempt(id, 100 + i, "host", "cpu", "/runs/tiny/" + jobs[i].hash).ok());
    for (int step = 1; step <= (i == 3 ? 3 : train_steps); ++step) {
      EXPECT_TRUE(s.add_metrics(id, 1, step, {{"train_loss", 3.0 - step * 0.01}, {"lr", 1e-4}},
                                TrainingSeen{step * 8, step * 800})
                      .ok());
    }
    EXPECT_TRUE(
        s.add_eval(id, 1, 0, {{"val_loss", 2.0}, {"val_exact_match", 0.1}}, TrainingSeen{0, 0})
            .ok());
    if (i == 3) {
      EXPECT_TRUE(s.finish_attempt(id, JobState::kFailed, 2,
                                   "train: CUDA out of memory\n  at trainer.cpp:12")
                      .ok());
      continue;
    }
    for (int step : {20, 40}) {
      const double v = step == 40 ? final_loss[i] : 1.8;
      EXPECT_TRUE(s.add_eval(id, 1, step, {{"val_loss", v}, {"val_exact_match", 0.5}},
                             TrainingSeen{step * 8, step * 800})
                      .ok());
      EXPECT_TRUE(s.add_checkpoint(id, step,
                                   "/runs/ckpt-" + std::to_string(step) + "-" + std::to_string(i),
                                   "{}")
                      .ok());
    }
    EXPECT_TRUE(s.add_predictions(id, 40,
                                  {{id, 40, 0, "000001", "What shape?", "A circle.",
                                    "<img src=x onerror=alert(1)>"},
                                   {id, 40, 1, "000002", "What colour?", "Red.", "red"}})
                    .ok());
    EXPECT_TRUE(s.finish_attempt(id, JobState::kSucceeded, 0, "").ok());
  }
  w.sweep = *s.resolve_sweep("tiny");
  return w;
}

}  // namespace sweep::testing
