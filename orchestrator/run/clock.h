// Time for the run loop: what time it is, and waiting for the next tick. The loop reads time only
// through a Clock, so that tests drive it with a FakeClock and never sleep.
#pragma once

#include <functional>
#include <utility>

namespace sweep {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch.
  virtual double now() = 0;
  // Returns once `seconds` have passed, or earlier when `wake_fd` (-1: none) becomes readable.
  // Never reads from wake_fd: draining it is the caller's business.
  virtual void wait(double seconds, int wake_fd) = 0;
};

// The machine's clock: now() is the system time, wait() polls wake_fd.
class SystemClock : public Clock {
 public:
  double now() override;
  void wait(double seconds, int wake_fd) override;
};

// One SystemClock for the process (the run loop's default).
Clock& system_clock();

// A clock that moves only when told to. wait() returns at once: if wake_fd is readable the time
// stays (a wake-up came first), otherwise the clock jumps by `seconds` and the on_wait hook runs:
// that is where a test acts between two ticks of the loop (asks it to stop, writes a file).
class FakeClock : public Clock {
 public:
  explicit FakeClock(double start = 1.7e9) : now_(start) {}

  double now() override { return now_; }
  void wait(double seconds, int wake_fd) override;
  void advance(double seconds) { now_ += seconds; }
  // Called with the new time after every wait that moved the clock.
  void set_on_wait(std::function<void(double now)> hook) { on_wait_ = std::move(hook); }

 private:
  double now_;
  std::function<void(double now)> on_wait_;
};

}  // namespace sweep
