// events.jsonl: the append-only channel from a worker to the orchestrator (DESIGN.md §2,
// docs/worker-protocol.md). One JSON object per line, flushed per event:
//   {"seq": 7, "time": 1700000000.25, "type": "progress", "attempt": 1, ...fields}
// `seq` grows by one per event across all attempts of a job, so re-reading a file is idempotent.
// Types and their fields:
//   started    pid, host, device, threads, versions{...}, resumed_from_step
//   progress   step, epoch, samples_seen, tokens_seen, train_loss, lr, grad_norm, tokens_per_s, mem_mb
//   eval       step, val_loss, val_token_acc, val_exact_match, val_samples
//   checkpoint step, path, metrics{...}
//   finished   step, final{...metrics}, best{step, ...metrics}, best_checkpoint
//   stopped    step, checkpoint            (SIGTERM: stopped cleanly; resumable)
//   failed     stage, message, [diverged: true]
//   heartbeat  step
// LibTorch-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep {

struct Event {
  int64_t seq = 0;
  double time = 0;  // seconds since the Unix epoch
  std::string type;
  nlohmann::json body;  // the whole object, seq/time/type included
};

// Appends events to a file. Continues the sequence of an existing file. Thread-safe.
class EventWriter {
 public:
  // Throws std::runtime_error naming the file when it cannot be opened for appending.
  EventWriter(std::string path, int attempt);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Adds seq, time, type and attempt to `fields`, writes one line, flushes to the OS.
  void emit(const std::string& type, nlohmann::json fields = nlohmann::json::object());
  int64_t last_seq() const;

 private:
  struct Impl;
  Impl* impl_;
};

// Parses one line. nullopt with `*error` set when it is not an event object.
std::optional<Event> parse_event(const std::string& line, std::string* error);

// Reads the complete lines appended to a file since the last poll; a trailing line without a
// newline (a write in progress) is left for the next poll. Missing file = no events yet.
class EventTail {
 public:
  explicit EventTail(std::string path, uint64_t offset = 0);
  // Malformed lines are skipped and described in `errors` (if given).
  std::vector<Event> poll(std::vector<std::string>* errors = nullptr);
  uint64_t offset() const { return offset_; }

 private:
  std::string path_;
  uint64_t offset_;
};

double unix_time_now();

}  // namespace sweep
