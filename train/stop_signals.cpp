#include "train/stop_signals.h"

#include <ctime>

#include "core/error.h"

namespace minivlm {

namespace {

sigset_t stop_set() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}

}  // namespace

StopSignals::StopSignals() {
  const sigset_t set = stop_set();
  const int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr);
  MV_CHECK(rc == 0, "cannot block SIGINT/SIGTERM (error ", rc, ")");
  waiter_ = std::thread([this, set] {
    // A short timeout so that the destructor can end the wait.
    const timespec tick{0, 50'000'000};
    while (!quit_.load()) {
      const int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig > 0) signal_.store(sig);
    }
  });
}

// The signals stay blocked: train_main returns to exit, and a signal arriving that late must not
// end the process by its default action after the run has finished.
StopSignals::~StopSignals() {
  quit_.store(true);
  waiter_.join();
}

}  // namespace minivlm
