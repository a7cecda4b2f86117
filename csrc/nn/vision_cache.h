// Features of the frozen vision tower, kept per image across steps and epochs.
//
// The tower never trains, so an image's features are a pure function of its pixels: from the second
// epoch on they can be looked up instead of recomputed (the tower is about half of a training
// step's FLOPs at 224² and batch 4). Images are keyed by a 128-bit hash of their pixel bytes, so
// the cache needs no cooperation from the data pipeline. Every image is computed alone (a batch of
// one), cached or not, so a run's numbers do not depend on which images were already cached — a
// resumed run with a cold cache reproduces the original bit for bit. Images beyond the memory
// budget are computed every time.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "core/tensor.h"

namespace minivlm {

class VisionTower;

class VisionFeatureCache {
 public:
  explicit VisionFeatureCache(size_t budget_bytes) : budget_(budget_bytes) {}
  // pixels [n, 3, S, S] → features [n, G², D], as vision.features would return them.
  Tensor features(const VisionTower& vision, const Tensor& pixels);
  // Counters, readable from any thread while another computes.
  size_t bytes() const { return used_.load(); }
  int64_t hits() const { return hits_.load(); }
  int64_t misses() const { return misses_.load(); }

 private:
  using Key = std::array<uint64_t, 2>;
  struct KeyHash {
    size_t operator()(const Key& k) const { return static_cast<size_t>(k[0]); }
  };
  size_t budget_;
  std::atomic<size_t> used_{0};
  std::atomic<int64_t> hits_{0}, misses_{0};
  std::mutex mu_;
  std::unordered_map<Key, Tensor, KeyHash> entries_;  // value [G², D]
};

}  // namespace minivlm
