// The model's seams: the vision tower and the projector are chosen by the config from what is
// registered (nn/vision_tower.h, nn/projector.h), unknown types are errors naming the valid ones,
// and MiniMindVLM::embed checks each sample's image-token runs against its images' tiles (one run
// of N per tile) and fills the runs with the tiles' rows in order.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "nn/vlm.h"
#include "ops/ops.h"

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

// A projector registered by this test, as a new projector file would: the first H channels of
// each pixel-shuffled row, without weights.
class NarrowProjector : public Projector {
 public:
  explicit NarrowProjector(const ModelConfig& c)
      : Projector(c.projector.pixel_shuffle), H_(c.llm.hidden_size) {}
  void params(ParamList&) const override {}
  void init(Rng&) override {}

 private:
  Tensor project(const Tensor& shuffled) const override {
    return shuffled.narrow(2, 0, H_).contiguous();
  }
  int64_t H_;
};

const bool narrow_registered = projectors().add(
    "test_narrow", {[](const ModelConfig& c) -> std::unique_ptr<Projector> {
                      return std::make_unique<NarrowProjector>(c);
                    },
                    [](const ModelConfig& c, const std::string& origin) {
                      MV_CHECK(c.llm.hidden_size <= c.projector_in(), origin,
                               ": projector.type test_narrow needs llm.hidden_size <= D·r²");
                    }});

TEST(VisionTower, ConfigChoosesARegisteredTypeAndNamesTheValidOnes) {
  EXPECT_THAT(vision_towers().names(), Contains("clip"));
  nlohmann::json j = fixture().to_json();
  EXPECT_EQ(j["vision"]["type"], "clip");
  j["vision"]["type"] = "sigclip";
  EXPECT_THAT([&] { ModelConfig::from_json(j, "cfg.json"); },
              ThrowsMessage<Error>(HasSubstr("cfg.json: vision.type 'sigclip' is unknown (valid: "
                                             "clip, siglip, smolvlm)")));
  VisionConfig v;
  v.type = "sigclip";
  EXPECT_THAT([&] { make_vision_tower(v); },
              ThrowsMessage<Error>(
                  HasSubstr("vision.type 'sigclip' is unknown (valid: clip, siglip, smolvlm)")));
  // The tower checks its own fields.
  j["vision"]["type"] = "clip";
  j["vision"]["hidden_act"] = "relu";
  EXPECT_THAT([&] { ModelConfig::from_json(j, "cfg.json"); },
              ThrowsMessage<Error>(HasSubstr("cfg.json: vision.hidden_act must be quick_gelu, gelu "
                                             "or gelu_pytorch_tanh, got relu")));
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

// A patch size that does not divide the image (SigLIP-SO400M: 384 px, 14 px patches) is the
// "valid" convolution of the Hugging Face towers: the remainder rows and columns are unseen, so the
// features are those of the top-left grid·patch square, for both tower types.
TEST(VisionTower, APatchRemainderIsLeftUnseen) {
  for (const char* type : {"clip", "siglip"}) {
    ModelConfig whole = fixture(), larger = fixture();
    for (ModelConfig* c : {&whole, &larger}) {
      c->vision.type = type;
      c->vision.hidden_act = "gelu";
    }
    larger.vision.image_size = whole.vision.image_size + 5;  // 37 px, patches of 8: grid 4
    MiniMindVLM a(whole, kImageToken), b(larger, kImageToken);
    a.init(4);
    b.init(4);
    EXPECT_EQ(b.vision->grid(), a.vision->grid());
    const Tensor px = random_pixels(2, larger.vision.image_size, 3);
    const Tensor seen = px.narrow(2, 0, 32).narrow(3, 0, 32).contiguous();
    EXPECT_EQ(b.vision->features(px).to_float_vector(), a.vision->features(seen).to_float_vector())
        << type;
  }
}

// Without projector.type a config (every file written before the key) is the linear projector
// with its SPEC §1.6 tensors, and to_json leaves the key out, so such a config.json is unchanged.
TEST(Projector, LinearIsTheDefaultKeepsItsTensorsAndItsConfigJson) {
  nlohmann::json j = fixture().to_json();
  EXPECT_FALSE(j["projector"].contains("type"));
  j["projector"]["bias"] = true;
  const ModelConfig c = ModelConfig::from_json(j, "cfg.json");
  EXPECT_EQ(c.projector.type, "linear");
  EXPECT_EQ(c.to_json(), j);
  j["projector"]["type"] = "linear";
  EXPECT_EQ(ModelConfig::from_json(j, "cfg.json").to_json()["projector"], c.to_json()["projector"]);

  const MiniMindVLM m(c, kImageToken);
  ParamList proj;
  m.projector->params(proj);
  ASSERT_EQ(proj.size(), 2u);
  EXPECT_EQ(proj[0].name, "vision_proj.proj.weight");
  EXPECT_EQ(proj[0].tensor.shape(), (Shape{c.llm.hidden_size, c.projector_in()}));
  EXPECT_EQ(proj[1].name, "vision_proj.proj.bias");
  EXPECT_EQ(proj[1].tensor.shape(), (Shape{c.llm.hidden_size}));

  j["projector"]["type"] = "mlpp";
  EXPECT_THAT([&] { ModelConfig::from_json(j, "cfg.json"); },
              ThrowsMessage<Error>(HasSubstr("cfg.json: projector.type 'mlpp' is unknown (valid: "
                                             "linear, mlp, test_narrow)")));
}

// A projector that registers itself is chosen by projector.type, checks its fields, is written
// back by to_json, and is the one the model projects with.
TEST(Projector, ARegisteredProjectorIsChosenByTheConfig) {
  ASSERT_TRUE(narrow_registered);
  EXPECT_THAT(projectors().names(), Contains("test_narrow"));
  nlohmann::json j = fixture().to_json();
  j["projector"]["type"] = "test_narrow";
  const ModelConfig c = ModelConfig::from_json(j, "cfg.json");
  EXPECT_EQ(c.to_json()["projector"]["type"], "test_narrow");
  EXPECT_EQ(ModelConfig::from_json(c.to_json(), "again").projector.type, "test_narrow");
  j["llm"]["hidden_size"] = 256;
  j["llm"]["head_dim"] = 64;
  EXPECT_THAT([&] { ModelConfig::from_json(j, "cfg.json"); },
              ThrowsMessage<Error>(HasSubstr("cfg.json: projector.type test_narrow needs")));

  MiniMindVLM m(c, kImageToken);
  m.init(5);
  for (const NamedTensor& p : m.params()) EXPECT_NE(p.name.rfind("vision_proj.", 0), 0u) << p.name;
  const Tensor px = random_pixels(2, c.vision.image_size, 3);
  const Tensor shuffled = ops::pixel_shuffle(m.vision->features(px), c.projector.pixel_shuffle);
  EXPECT_EQ(m.image_rows(px).to_float_vector(),
            shuffled.narrow(2, 0, c.llm.hidden_size).contiguous().to_float_vector());
}

// ids of one row: `text` tokens, then for each run its N image tokens followed by 2 text tokens.
std::vector<int64_t> row(const std::vector<int64_t>& runs, int64_t T) {
  std::vector<int64_t> ids = {1, 5, 7};
  for (int64_t n : runs) {
    ids.insert(ids.end(), static_cast<size_t>(n), kImageToken);
    ids.insert(ids.end(), {40, 41});
  }
  ids.resize(static_cast<size_t>(T), 0);
  return ids;
}

VlmBatch batch_of(const std::vector<std::vector<int64_t>>& runs, std::vector<int64_t> images,
                  std::vector<int64_t> tiles, int64_t n_tiles, int64_t S) {
  const int64_t B = static_cast<int64_t>(runs.size()), T = 24;
  std::vector<int64_t> ids;
  for (const auto& r : runs) {
    const std::vector<int64_t> one = row(r, T);
    ids.insert(ids.end(), one.begin(), one.end());
  }
  VlmBatch b;
  b.ids = Tensor::from_vector(ids, {B, T});
  b.label_mask = Tensor::zeros({B, T}, DType::i64);
  b.pixels = random_pixels(n_tiles, S, 7);
  b.images_per_sample = std::move(images);
  b.tiles_per_image = std::move(tiles);
  return b;
}

TEST(Embed, RejectsRunsThatDoNotMatchTheImagesTilesNamingTheSample) {
  const ModelConfig c = fixture();
  MiniMindVLM m(c, kImageToken);
  m.init(6);
  const int64_t N = c.tokens_per_image(), S = c.vision.image_size;
  ASSERT_EQ(N, 4);
  EXPECT_THAT(
      [&] {
        m.embed(batch_of({{N}, {N - 1}}, {1, 1}, {}, 2, S));
      },
      ThrowsMessage<Error>(
          HasSubstr("sample 1: a run of 3 image tokens at position 3 (expected 4 per tile)")));
  EXPECT_THAT(
      [&] {
        m.embed(batch_of({{N}, {N, N}}, {1, 1}, {}, 3, S));
      },
      ThrowsMessage<Error>(HasSubstr(
          "sample 1: 2 runs of image tokens for 1 images of 1 tiles (one run per tile)")));
  EXPECT_THAT(
      [&] {
        m.embed(batch_of({{N, N}, {N}}, {1, 1}, {1, 1}, 3, S));
      },
      ThrowsMessage<Error>(HasSubstr("sample 0: 2 runs of image tokens for 1 images of 1 "
                                     "tiles")));
  EXPECT_THAT(
      [&] {
        m.embed(batch_of({{N, N}, {N}}, {1, 1}, {2}, 3, S));
      },
      ThrowsMessage<Error>(HasSubstr("batch: 1 tile counts for 2 images")));
  EXPECT_THAT(
      [&] {
        m.embed(batch_of({{N, N}, {N}}, {1, 1}, {2, 1}, 2, S));
      },
      ThrowsMessage<Error>(HasSubstr("batch: 3 tiles referenced by tokens but 2 given")));
}

// Sample 0 holds one image of two tiles (two runs), sample 1 one image of one tile: the tower sees
// the three tiles in order and their rows fill the three runs in order; text rows are the
// embedding's.
TEST(Embed, TilesFillTheRunsInOrder) {
  const ModelConfig c = fixture();
  MiniMindVLM m(c, kImageToken);
  m.init(8);
  const int64_t N = c.tokens_per_image(), H = c.llm.hidden_size;
  const VlmBatch b = batch_of({{N, N}, {N}}, {1, 1}, {2, 1}, 3, c.vision.image_size);
  const std::vector<float> h = m.embed(b).to_float_vector();                 // [2, T, H]
  const std::vector<float> rows = m.image_rows(b.pixels).to_float_vector();  // [3·N, H]
  const std::vector<float> text = m.llm.embed(b.ids).to_float_vector();      // [2, T, H]
  const std::vector<int64_t> ids = b.ids.to_int_vector();
  const int64_t T = b.ids.size(1);
  int64_t next = 0;  // image row
  for (int64_t t = 0; t < 2 * T; ++t) {
    const bool image = ids[t] == kImageToken;
    const std::vector<float>& src = image ? rows : text;
    const int64_t r = image ? next++ : t;
    EXPECT_TRUE(std::equal(h.begin() + t * H, h.begin() + (t + 1) * H, src.begin() + r * H))
        << "position " << t % T << " of sample " << t / T;
  }
  EXPECT_EQ(next, 3 * N);
}

}  // namespace
}  // namespace minivlm
