// The model's seams: the vision tower is chosen by the config's vision.type from what is
// registered (nn/vision_tower.h), and an unknown type is an error naming the valid ones.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "nn/vlm.h"

namespace minivlm {
namespace {

using testing::Contains;
using testing::HasSubstr;
using testing::ThrowsMessage;

constexpr int64_t kImageToken = 12;

ModelConfig fixture() {
  return ModelConfig::from_file(MINIVLM_SOURCE_DIR "/tests/fixtures/test-model.json");
}

Tensor random_pixels(int64_t n, int64_t S, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n * 3 * S * S));
  for (float& x : v) x = static_cast<float>(rng.normal(0, 1));
  return Tensor::from_vector(v, {n, 3, S, S});
}

TEST(VisionTower, ConfigChoosesARegisteredTypeAndNamesTheValidOnes) {
  EXPECT_THAT(vision_towers().names(), Contains("clip"));
  nlohmann::json j = fixture().to_json();
  EXPECT_EQ(j["vision"]["type"], "clip");
  j["vision"]["type"] = "sigclip";
  EXPECT_THAT([&] { ModelConfig::from_json(j, "cfg.json"); },
              ThrowsMessage<Error>(HasSubstr("cfg.json: vision.type 'sigclip' is unknown (valid: "
                                             "clip)")));
  VisionConfig v;
  v.type = "sigclip";
  EXPECT_THAT([&] { make_vision_tower(v); },
              ThrowsMessage<Error>(HasSubstr("vision.type 'sigclip' is unknown (valid: clip)")));
  // The tower checks its own fields.
  j["vision"]["type"] = "clip";
  j["vision"]["hidden_act"] = "gelu_pytorch_tanh";
  EXPECT_THAT(
      [&] { ModelConfig::from_json(j, "cfg.json"); },
      ThrowsMessage<Error>(HasSubstr(
          "cfg.json: vision.hidden_act must be quick_gelu or gelu, got gelu_pytorch_tanh")));
}

// features() is the frozen tower: no graph even when its weights require grad; forward() is the
// same computation with the graph; pixels of the wrong size name both shapes.
TEST(VisionTower, FeaturesRunWithoutAutograd) {
  const ModelConfig c = fixture();
  MiniMindVLM m(c, kImageToken);
  m.init(4);
  ParamList tower;
  m.vision->params(tower);
  for (NamedTensor& p : tower) p.tensor.set_requires_grad(true);
  EXPECT_EQ(m.vision->grid(), 4);
  EXPECT_EQ(m.vision->width(), c.vision.hidden_size);
  const Tensor px = random_pixels(2, c.vision.image_size, 1);
  const Tensor frozen = m.vision->features(px), recorded = m.vision->forward(px);
  EXPECT_EQ(frozen.shape(), (Shape{2, 16, c.vision.hidden_size}));
  EXPECT_FALSE(frozen.requires_grad());
  EXPECT_TRUE(recorded.requires_grad());
  EXPECT_EQ(frozen.to_float_vector(), recorded.to_float_vector());
  EXPECT_THAT([&] { m.vision->features(random_pixels(1, 8, 2)); },
              ThrowsMessage<Error>(HasSubstr("pixels [1, 3, 8, 8] do not match [n, 3, 32, 32]")));
}

}  // namespace
}  // namespace minivlm
