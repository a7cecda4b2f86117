// Ordered prefetch: worker threads produce items 0, 1, 2, ... of a deterministic sequence ahead of
// one consumer, which receives them strictly in sequence order whatever the number of workers and
// their timing. At most `depth` items are in flight or waiting, so memory stays bounded however far
// the consumer falls behind.
//
// An exception thrown while producing item k reaches the consumer when it asks for item k (and
// every later call); the workers stop then. Destruction stops the workers and joins them: a worker
// busy producing finishes that item first, so a consumer that stops early never hangs.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"

namespace minivlm {

template <typename T>
class OrderedPrefetcher {
 public:
  using Produce = std::function<T(int64_t)>;  // item k; called from the worker threads

  OrderedPrefetcher(Produce produce, int workers, int depth)
      : produce_(std::move(produce)), depth_(depth) {
    MV_CHECK(workers >= 1, "prefetch: need at least one worker, got ", workers);
    MV_CHECK(depth >= 1, "prefetch: depth must be at least 1, got ", depth);
    threads_.reserve(static_cast<size_t>(workers));
    try {
      for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
    } catch (...) {
      stop_and_join();
      throw;
    }
  }

  ~OrderedPrefetcher() { stop_and_join(); }

  OrderedPrefetcher(const OrderedPrefetcher&) = delete;
  OrderedPrefetcher& operator=(const OrderedPrefetcher&) = delete;

  // The next item of the sequence; blocks until a worker has produced it.
  T next() {
    std::unique_lock<std::mutex> lock(mu_);
    if (failure_) std::rethrow_exception(failure_);
    arrived_.wait(lock, [&] { return ready_.count(consumed_) != 0; });
    Slot slot = std::move(ready_.extract(consumed_).mapped());
    ++consumed_;
    if (slot.error) {
      failure_ = slot.error;
      stop_ = true;
    }
    lock.unlock();
    space_.notify_all();
    if (slot.error) std::rethrow_exception(slot.error);
    return std::move(*slot.value);
  }

 private:
  struct Slot {
    std::optional<T> value;
    std::exception_ptr error;
  };

  void stop_and_join() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    space_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  void work() {
    for (;;) {
      int64_t k;
      {
        std::unique_lock<std::mutex> lock(mu_);
        space_.wait(lock, [&] { return stop_ || claimed_ < consumed_ + depth_; });
        if (stop_) return;
        k = claimed_++;
      }
      Slot slot;
      try {
        slot.value.emplace(produce_(k));
      } catch (...) {
        slot.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready_.emplace(k, std::move(slot));
      }
      arrived_.notify_all();
    }
  }

  Produce produce_;
  const int64_t depth_;
  std::mutex mu_;
  std::condition_variable space_;    // workers wait for room in the window
  std::condition_variable arrived_;  // the consumer waits for its item
  std::map<int64_t, Slot> ready_;    // produced, not yet consumed
  int64_t claimed_ = 0;              // items handed to workers
  int64_t consumed_ = 0;             // items handed to the consumer
  bool stop_ = false;
  std::exception_ptr failure_;
  std::vector<std::thread> threads_;  // last: started after everything they use exists
};

}  // namespace minivlm
