#include "nn/vision_cache.h"

#include <cstring>
#include <vector>

#include "autograd/node.h"
#include "nn/vision_tower.h"
#include "ops/ops.h"

namespace minivlm {

namespace {

// Two independent 64-bit multiply-xor streams over the pixel words: a collision needs both.
std::array<uint64_t, 2> pixel_key(const float* p, int64_t n) {
  uint64_t h1 = 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(n);
  uint64_t h2 = 0xc2b2ae3d27d4eb4full + static_cast<uint64_t>(n);
  const auto mix = [](uint64_t h, uint64_t w, uint64_t k) {
    h ^= w * k;
    h = (h << 31) | (h >> 33);
    return h * 0x94d049bb133111ebull;
  };
  int64_t i = 0;
  for (; i + 1 < n; i += 2) {
    uint64_t w;
    std::memcpy(&w, p + i, sizeof w);
    h1 = mix(h1, w, 0xff51afd7ed558ccdull);
    h2 = mix(h2, w ^ 0x5851f42d4c957f2dull, 0xbf58476d1ce4e5b9ull);
  }
  if (i < n) {
    uint32_t w;
    std::memcpy(&w, p + i, sizeof w);
    h1 = mix(h1, w, 0xff51afd7ed558ccdull);
    h2 = mix(h2, w, 0xbf58476d1ce4e5b9ull);
  }
  return {h1, h2};
}

}  // namespace

Tensor VisionFeatureCache::features(const VisionTower& vision, const Tensor& pixels) {
  NoGradGuard frozen;
  const Tensor px = pixels.contiguous();
  const int64_t n = px.size(0), per_image = px.numel() / std::max<int64_t>(n, 1);
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < n; ++i) {
    const Key key = pixel_key(px.data<float>() + i * per_image, per_image);
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto it = entries_.find(key);
      if (it != entries_.end()) {
        ++hits_;
        rows.push_back(it->second.reshape({1, it->second.size(0), it->second.size(1)}));
        continue;
      }
      ++misses_;
    }
    const Tensor f = vision.features(px.narrow(0, i, 1)).contiguous();  // [1, G², D]
    rows.push_back(f);
    const size_t bytes = f.nbytes();  // half of fp32's for a tower in bf16
    std::lock_guard<std::mutex> lock(mu_);
    if (used_ + bytes <= budget_ && entries_.emplace(key, f.reshape({f.size(1), f.size(2)})).second)
      used_ += bytes;
  }
  return rows.size() == 1 ? rows[0] : ops::concat(rows, 0);
}

}  // namespace minivlm
