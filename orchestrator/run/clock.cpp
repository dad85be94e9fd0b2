#include "orchestrator/run/clock.h"

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

namespace sweep {

namespace {

bool readable(int fd, int timeout_ms) {
  struct pollfd pfd {
    fd, POLLIN, 0
  };
  return ::poll(&pfd, 1, timeout_ms) > 0 && (pfd.revents & POLLIN) != 0;
}

}  // namespace

double SystemClock::now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

void SystemClock::wait(double seconds, int wake_fd) {
  if (seconds <= 0) return;
  if (wake_fd < 0) {
    ::usleep(static_cast<useconds_t>(seconds * 1e6));
    return;
  }
  // A signal (SIGCHLD, SIGINT) interrupts poll early; the loop then simply ticks sooner.
  readable(wake_fd, static_cast<int>(std::ceil(seconds * 1000)));
}

Clock& system_clock() {
  static SystemClock clock;
  return clock;
}

void FakeClock::wait(double seconds, int wake_fd) {
  if (wake_fd >= 0 && readable(wake_fd, 0)) return;
  now_ += seconds;
  if (on_wait_) on_wait_(now_);
}

}  // namespace sweep
