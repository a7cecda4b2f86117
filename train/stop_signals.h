// Stop requests for a training run: SIGINT and SIGTERM finish the current step, save and exit.
//
// The two signals are blocked in every thread and taken by one thread of their own, which only
// records them. No computing thread is ever interrupted by a handler: oneDNN 2.6's GEMM corrupts
// its heap when a signal handler runs on one of its OpenMP threads mid-product.
#pragma once
#include <signal.h>

#include <atomic>
#include <thread>

namespace minivlm {

class StopSignals {
 public:
  // Must run before the process starts any other thread: threads inherit the blocked mask.
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The last stop signal received, 0 while none has come.
  int received() const { return signal_.load(); }

 private:
  std::atomic<int> signal_{0};
  std::atomic<bool> quit_{false};
  std::thread waiter_;
};

}  // namespace minivlm
