// The frozen-tower feature cache: the features it returns are those of the tower itself, image by
// image; a second batch with a repeated image is served from the cache; the budget is respected.
#include <gtest/gtest.h>

#include <vector>

#include "core/rng.h"
#include "nn/config.h"
#include "nn/vision_cache.h"
#include "nn/vlm.h"
#include "ops/ops.h"

namespace minivlm {
namespace {

Tensor random_pixels(int64_t n, int64_t S, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n * 3 * S * S));
  for (float& x : v) x = static_cast<float>(rng.normal(0, 1));
  return Tensor::from_vector(v, {n, 3, S, S});
}

std::vector<float> tower(const MiniMindVLM& m, const Tensor& pixels) {
  std::vector<float> out;
  for (int64_t i = 0; i < pixels.size(0); ++i) {
    const std::vector<float> f = m.vision->features(pixels.narrow(0, i, 1)).to_float_vector();
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

TEST(VisionFeatureCache, ReturnsTheTowerFeaturesAndServesRepeatsFromMemory) {
  const ModelConfig c =
      ModelConfig::from_file(MINIVLM_SOURCE_DIR "/tests/fixtures/test-model.json");
  MiniMindVLM m(c, c.llm.vocab_size - 1);
  m.init(3);
  const int64_t S = c.vision.image_size;
  const Tensor a = random_pixels(2, S, 1), b = random_pixels(1, S, 2);
  VisionFeatureCache cache(size_t{1} << 20);
  EXPECT_EQ(cache.features(*m.vision, a).to_float_vector(), tower(m, a));
  EXPECT_EQ(cache.hits(), 0);
  EXPECT_EQ(cache.misses(), 2);
  // The second image of `a` again, beside a new one.
  const Tensor mixed = ops::concat({a.narrow(0, 1, 1), b}, 0);
  EXPECT_EQ(cache.features(*m.vision, mixed).to_float_vector(), tower(m, mixed));
  EXPECT_EQ(cache.hits(), 1);
  EXPECT_EQ(cache.misses(), 3);
  const size_t per_image =
      static_cast<size_t>(c.vision.grid() * c.vision.grid() * c.vision.hidden_size) * sizeof(float);
  EXPECT_EQ(cache.bytes(), 3 * per_image);
}

// The same for a SigLIP tower (every patch token, post_layernorm applied).
TEST(VisionFeatureCache, ServesSiglipFeatures) {
  const ModelConfig c =
      ModelConfig::from_file(MINIVLM_SOURCE_DIR "/tests/fixtures/test-model-3v.json");
  ASSERT_EQ(c.vision.type, "siglip");
  MiniMindVLM m(c, c.llm.vocab_size - 1);
  m.init(3);
  const Tensor a = random_pixels(2, c.vision.image_size, 1);
  VisionFeatureCache cache(size_t{1} << 20);
  EXPECT_EQ(cache.features(*m.vision, a).to_float_vector(), tower(m, a));
  EXPECT_EQ(cache.features(*m.vision, a).to_float_vector(), tower(m, a));
  EXPECT_EQ(cache.hits(), 2);
  EXPECT_EQ(cache.misses(), 2);
}

TEST(VisionFeatureCache, ImagesBeyondTheBudgetAreRecomputed) {
  const ModelConfig c =
      ModelConfig::from_file(MINIVLM_SOURCE_DIR "/tests/fixtures/test-model.json");
  MiniMindVLM m(c, c.llm.vocab_size - 1);
  m.init(3);
  const size_t per_image =
      static_cast<size_t>(c.vision.grid() * c.vision.grid() * c.vision.hidden_size) * sizeof(float);
  VisionFeatureCache cache(per_image);  // room for one image
  const Tensor a = random_pixels(2, c.vision.image_size, 5);
  cache.features(*m.vision, a);
  EXPECT_EQ(cache.features(*m.vision, a).to_float_vector(), tower(m, a));
  EXPECT_EQ(cache.bytes(), per_image);
  EXPECT_EQ(cache.hits(), 1);    // the first image, cached
  EXPECT_EQ(cache.misses(), 3);  // the second, recomputed both times
}

}  // namespace
}  // namespace minivlm
