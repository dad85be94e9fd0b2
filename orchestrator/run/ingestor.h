// Ingestion of one job's events.jsonl into the store (docs/architecture.md). Each poll reads the
// lines appended since the job's cursor and writes their rows together with the new cursor
// (events_offset, last_seq) in one transaction, so a crash at any moment loses nothing and
// re-reading never duplicates: events at or below last_seq are skipped, and every row is keyed.
//
// What becomes a row (docs/database.md): the metrics of progress events (`metrics`) and of eval
// events (`eval_metrics`), never their bookkeeping fields (step, val_samples, seconds) and never a
// NaN; checkpoints, with kept = 0 for the paths a checkpoint event lists as deleted; learning
// checks (`learning_checks`); started, lora_targets, finished, failed and stopped events as job
// info.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "db/store.h"
#include "protocol/events.h"

namespace sweep {

// What the loop needs to know about a job's latest attempt, as read from its events.
struct JobProgress {
  int64_t step = 0;
  int64_t max_steps = 0;
  std::optional<double> train_loss;
  std::optional<double> tokens_per_s;
  bool nonfinite_loss = false;  // a progress event whose loss was NaN/inf (written as null)
  // An eval event carrying tokens seen was stored since the flag was last cleared: early
  // stopping has something new to judge.
  bool evals_with_tokens = false;
  double last_event_time = 0;
  // The attempt's final event (finished | failed | stopped), once seen.
  std::optional<Event> final_event;
  // Lines of events.jsonl that could not be read are skipped (their rows are missing): how many,
  // and the latest one's error ("<path>:<line>: seq 7: progress event: field 'step' ...").
  int malformed_count = 0;
  std::optional<Error> last_malformed;
};

class Ingestor {
 public:
  // Job info key of the unreadable events lines: {"count": N, "last": "<path>:<line>: ..."}.
  static constexpr const char* kUnreadableKey = "unreadable_event_lines";

  // `attempt`: the attempt whose final event counts; events of earlier attempts are stored but
  // their final events are ignored.
  Ingestor(Store& store, int64_t job_id, int attempt, const std::string& events_path,
           uint64_t offset, int64_t last_seq);

  // Reads and stores what was appended. Returns the number of events ingested.
  Result<int> poll();
  const JobProgress& progress() const { return progress_; }
  // Returns and clears progress().evals_with_tokens.
  bool take_new_evals() { return std::exchange(progress_.evals_with_tokens, false); }
  void set_max_steps(int64_t max_steps) { progress_.max_steps = max_steps; }
  int64_t last_seq() const { return last_seq_; }

 private:
  Status apply(const Event& event);
  // Unreadable lines are skipped: a warning each (a few per poll) naming file and line, and
  // their count in the job's info.
  void warn_malformed(const std::vector<Error>& malformed);
  Status record_malformed(const std::vector<Error>& malformed);
  Status apply_checkpoint(const CheckpointEvent& c);

  Store& store_;
  int64_t job_id_;
  int attempt_;
  EventTail tail_;
  int64_t last_seq_;
  JobProgress progress_;
};

}  // namespace sweep
