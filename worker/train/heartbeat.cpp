#include "worker/train/heartbeat.h"

#include <unistd.h>

#include <chrono>
#include <fstream>

#include "protocol/events.h"

namespace sweep::train {

Heartbeat::Heartbeat(EventWriter& events, const std::atomic<int>& step, double period_seconds)
    : events_(events), step_(step), period_(period_seconds) {
  if (period_ > 0) thread_ = std::thread([this] { loop(); });
}

Heartbeat::~Heartbeat() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Heartbeat::loop() {
  const auto period = std::chrono::duration<double>(period_);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, period, [this] { return done_; })) {
    try {
      events_.emit(HeartbeatEvent{step_.load()});
    } catch (const std::exception&) {
      // A full disk must not kill training from a side thread; the main loop's next write reports
      // it.
    }
  }
}

double resident_memory_mb() {
  std::ifstream in("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (!(in >> pages_total >> pages_resident)) return 0.0;
  return static_cast<double>(pages_resident) * sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

}  // namespace sweep::train
