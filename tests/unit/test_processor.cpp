// The image processor seam (data/processor.h): the CLIP processor gives clip_preprocess's pixels
// as one tile and N image tokens per image; an unknown vision.type names the valid ones; a
// processor that cuts every image into two tiles, registered here as a new processor file would
// be, goes through the dataset and collation with one run of N image tokens per tile, tiles in
// order.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/batch.h"
#include "data/processor.h"
#include "nn/config.h"
#include "test_dataset_fixtures.h"

namespace minivlm {
namespace {

using testing::Contains;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::ThrowsMessage;
using namespace testing_data;

RgbImage gradient(int w, int h) {
  RgbImage img{w, h, std::vector<uint8_t>(static_cast<size_t>(w * h * 3))};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 7 % 251);
  return img;
}

// Each image becomes two tiles, the CLIP tile and its negation, and its placeholder one run of N
// image tokens per tile with a newline between them.
class TwoTileProcessor : public ImageProcessor {
 public:
  explicit TwoTileProcessor(const ModelConfig& c)
      : ImageProcessor(c.vision.image_size, c.image_token),
        run_(image_run(c.image_token, c.tokens_per_image())) {}

  ProcessedImage process(const RgbImage& image) const override {
    ProcessedImage p{clip_preprocess(image, static_cast<int>(tile_size())), 2, run_};
    const size_t tile = p.pixels.size();
    for (size_t i = 0; i < tile; ++i) p.pixels.push_back(-p.pixels[i]);
    p.prompt.text += "\n" + run_.text;
    p.prompt.image_tokens += run_.image_tokens;
    return p;
  }

 private:
  ImagePrompt run_;
};

const bool two_tiles_registered = image_processors().add(
    "test_two_tiles", [](const ModelConfig& c) -> std::shared_ptr<const ImageProcessor> {
      return std::make_shared<TwoTileProcessor>(c);
    });

TEST(ImageProcessor, ClipGivesClipPreprocessAsOneTileAndNImageTokens) {
  ModelConfig c;
  c.vision.image_size = 32;
  c.vision.patch_size = 8;
  c.vision.image_mean = {0.5f, 0.25f, 0.125f};
  c.vision.image_std = {0.1f, 0.2f, 0.3f};
  const std::shared_ptr<const ImageProcessor> clip = ImageProcessor::for_model(c);
  EXPECT_EQ(clip->tile_size(), 32);
  EXPECT_EQ(clip->image_token(), "<|image_pad|>");
  for (const RgbImage& img : {gradient(40, 30), gradient(17, 50), gradient(32, 32)}) {
    const ProcessedImage p = clip->process(img);
    EXPECT_EQ(p.tiles, 1);
    EXPECT_EQ(p.pixels, clip_preprocess(img, 32, {c.vision.image_mean, c.vision.image_std}))
        << img.width << "x" << img.height;
    EXPECT_EQ(p.prompt.text, "<|image_pad|><|image_pad|><|image_pad|><|image_pad|>");
    EXPECT_EQ(p.prompt.image_tokens, 4);  // (32 / 8 / 2)²
  }
}

TEST(ImageProcessor, UnknownVisionTypeNamesTheValidOnes) {
  ASSERT_TRUE(two_tiles_registered);
  EXPECT_THAT(image_processors().names(), Contains("clip"));
  EXPECT_THAT(image_processors().names(), Contains("siglip"));
  EXPECT_THAT(image_processors().names(), Contains("smolvlm"));
  ModelConfig c;
  c.vision.type = "pixtral";
  EXPECT_THAT([&] { ImageProcessor::for_model(c); },
              ThrowsMessage<Error>(
                  HasSubstr("image processor for vision.type 'pixtral' is unknown (valid: clip, "
                            "siglip, smolvlm, test_two_tiles)")));
}

// Two images of two tiles each, a text-only record, one image: the samples carry their tiles in
// order with one run of N per tile, and collation keeps the tile counts beside the image counts.
TEST(ImageProcessor, SeveralTilesPerImageThroughTheDatasetAndCollation) {
  ScratchDir dir;
  write_png(dir.image("a.png"), 20, 16, 1);
  write_png(dir.image("b.png"), 16, 24, 2);
  write_file(dir.file("d.jsonl"), record("Compare.", "Same.", R"("a.png, b.png")") + "\n" +
                                      record("Hi", "Hello") + "\n" +
                                      record("<image>One.", "Yes.", R"("b.png")") + "\n");
  ModelConfig c = small_model();
  c.vision.type = "test_two_tiles";
  const Dataset ds(dir.file("d.jsonl"), dir.images(), minimind(), SampleFormat::for_model(c, 256));
  std::vector<Sample> samples;
  for (size_t i = 0; i < ds.size(); ++i) {
    SampleResult r = ds.load(i);
    ASSERT_TRUE(r.sample) << r.skip_reason;
    samples.push_back(std::move(*r.sample));
  }
  const std::vector<float> a = clip_preprocess(load_rgb_image(dir.image("a.png")), 16);
  const std::vector<float> b = clip_preprocess(load_rgb_image(dir.image("b.png")), 16);
  const auto negated = [](std::vector<float> v) {
    for (float& x : v) x = -x;
    return v;
  };
  const auto concat = [](const std::vector<std::vector<float>>& parts) {
    std::vector<float> out;
    for (const std::vector<float>& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };

  EXPECT_EQ(samples[0].num_images, 2);
  EXPECT_THAT(samples[0].tiles_per_image, ElementsAre(2, 2));
  EXPECT_EQ(samples[0].pixels, concat({a, negated(a), b, negated(b)}));
  std::vector<int64_t> runs;  // lengths of the runs of image tokens
  for (size_t t = 0; t < samples[0].ids.size(); ++t)
    if (samples[0].ids[t] == 12) {
      if (t == 0 || samples[0].ids[t - 1] != 12) runs.push_back(0);
      ++runs.back();
    }
  EXPECT_THAT(runs, ElementsAre(4, 4, 4, 4));

  const MicroBatch mb = collate(samples, {0, 1, 2}, ds.pad_id(), ds.images().tile_size());
  EXPECT_THAT(mb.batch.images_per_sample, ElementsAre(2, 0, 1));
  EXPECT_THAT(mb.batch.tiles_per_image, ElementsAre(2, 2, 2));
  ASSERT_EQ(mb.batch.pixels.shape(), (Shape{6, 3, 16, 16}));
  EXPECT_EQ(mb.batch.pixels.to_float_vector(),
            concat({a, negated(a), b, negated(b), b, negated(b)}));
}

}  // namespace
}  // namespace minivlm
