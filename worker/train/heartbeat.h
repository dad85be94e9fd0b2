// A background thread that emits a `heartbeat` event every `period_seconds`, so the orchestrator
// can tell a slow step (or a long evaluation) from a lost process. LibTorch-free.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace sweep {
class EventWriter;
}

namespace sweep::train {

class Heartbeat {
 public:
  // Starts the thread; `step` is read at each beat (the trainer keeps it current). A period <= 0
  // starts no thread.
  Heartbeat(EventWriter& events, const std::atomic<int>& step, double period_seconds);
  ~Heartbeat();  // stops and joins
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

 private:
  void loop();

  EventWriter& events_;
  const std::atomic<int>& step_;
  double period_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

// Resident set size of this process in MiB (from /proc/self/statm; 0 where it is unreadable).
double resident_memory_mb();

}  // namespace sweep::train
