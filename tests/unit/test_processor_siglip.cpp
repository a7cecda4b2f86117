// The SigLIP image processor (data/processor_siglip.cpp) against transformers'
// SiglipImageProcessorPil: the evaluation photos and crops of them (landscape, portrait, small,
// upscaled) at resample=2 (bilinear, mean = std = 0.5, 64²) and resample=3 (bicubic, CLIP's
// mean/std, 48²), reached through ImageProcessor::for_model of a config whose vision.type is
// "siglip"; the same comparison with the filter or mean/std deliberately wrong fails.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/error.h"
#include "data/processor.h"
#include "nn/config.h"
#include "test_image_goldens.h"

namespace minivlm {
namespace {

using image_test::crop;
using image_test::decoded;
using image_test::golden_f32;
using image_test::goldens;
using image_test::source_path;
using testing::HasSubstr;
using testing::ThrowsMessage;

// A SigLIP model's config by hand (ModelConfig::from_json needs a registered "siglip" tower).
ModelConfig siglip_config(int64_t size, const std::string& resample, std::array<float, 3> mean,
                          std::array<float, 3> std) {
  ModelConfig c;
  c.vision.type = "siglip";
  c.vision.image_size = size;
  c.vision.patch_size = 16;
  c.vision.resample = resample;
  c.vision.image_mean = mean;
  c.vision.image_std = std;
  return c;
}

std::array<float, 3> floats(const nlohmann::json& j) {
  return {j[0].get<float>(), j[1].get<float>(), j[2].get<float>()};
}

struct Comparison {
  int cases = 0, hashes_equal = 0;
  int64_t values = 0, exact = 0;
  double max_err = 0, max_sum_err = 0;
};

enum class Mistake { none, swap_filter, swap_mean_std };

// Every golden case through the processor for_model gives, compared with transformers' tensor:
// the stored (strided) values, the channel sums, the hash of all float32 bytes.
Comparison compare_with_transformers(Mistake mistake) {
  Comparison r;
  for (const auto& c : goldens()["siglip"]) {
    const int s = c["size"], stride = c["stride"], pil_resample = c["resample"];
    EXPECT_TRUE(pil_resample == 2 || pil_resample == 3);
    std::string resample = pil_resample == 2 ? "bilinear" : "bicubic";
    std::array<float, 3> mean = floats(c["image_mean"]), std = floats(c["image_std"]);
    if (mistake == Mistake::swap_filter) resample = pil_resample == 2 ? "bicubic" : "bilinear";
    if (mistake == Mistake::swap_mean_std) std::swap(mean, std);
    const ProcessedImage p = ImageProcessor::for_model(siglip_config(s, resample, mean, std))
                                 ->process(crop(decoded(c["input"]), c["crop"]));
    EXPECT_EQ(p.tiles, 1);
    EXPECT_EQ(p.pixels.size(), size_t(3) * s * s);
    if (p.pixels.size() != size_t(3) * s * s) continue;
    const std::vector<float> want = golden_f32(c);
    size_t k = 0;
    for (int ch = 0; ch < 3; ++ch) {
      double sum = 0;
      for (int i = 0; i < s * s; ++i) sum += p.pixels[size_t(ch) * s * s + i];
      r.max_sum_err = std::max(r.max_sum_err, std::fabs(sum - c["channel_sums"][ch].get<double>()));
      for (int y = 0; y < s; y += stride)
        for (int x = 0; x < s; x += stride, ++k) {
          if (k >= want.size()) continue;
          const float got = p.pixels[(size_t(ch) * s + y) * s + x];
          r.max_err = std::max(r.max_err, std::fabs(double(got) - double(want[k])));
          r.exact += got == want[k];
          ++r.values;
        }
    }
    EXPECT_EQ(k, want.size());
    r.hashes_equal += image_test::fnv1a64_hex(p.pixels.data(), p.pixels.size() * sizeof(float)) ==
                      c["fnv1a64"].get<std::string>();
    ++r.cases;
  }
  return r;
}

TEST(SiglipProcessor, MatchesSiglipImageProcessorPil) {
  const Comparison r = compare_with_transformers(Mistake::none);
  EXPECT_EQ(r.cases, 60);  // 6 photos × 5 crops × 2 settings
  EXPECT_LE(r.max_err, 1e-6);
  EXPECT_LE(r.max_sum_err, 1e-3);
  EXPECT_EQ(r.hashes_equal, r.cases) << "whole tensors bit-identical to transformers'";
  std::printf(
      "[ stats    ] siglip vs SiglipImageProcessorPil: %d cases, %lld values, %lld exact, "
      "max |err| %.3g, whole tensors bit-identical %d/%d\n",
      r.cases, static_cast<long long>(r.values), static_cast<long long>(r.exact), r.max_err,
      r.hashes_equal, r.cases);
}

// The comparison above catches the mistakes a port is likely to make.
TEST(SiglipProcessor, WrongFilterOrNormalizationFailsTheComparison) {
  for (const Mistake m : {Mistake::swap_filter, Mistake::swap_mean_std}) {
    const Comparison r = compare_with_transformers(m);
    const char* what = m == Mistake::swap_filter ? "bilinear <-> bicubic" : "mean <-> std";
    EXPECT_GT(r.max_err, 1e-2) << what;
    // mean = std = 0.5 in the bilinear setting: swapping them changes only the bicubic cases.
    EXPECT_EQ(r.hashes_equal, m == Mistake::swap_filter ? 0 : 30) << what;
    std::printf("[ stats    ] %s: max |err| %.3g, whole tensors bit-identical %d/%d\n", what,
                r.max_err, r.hashes_equal, r.cases);
  }
}

TEST(SiglipProcessor, ForModelGivesSiglipPreprocessAsOneTileAndNImageTokens) {
  const ModelConfig c = siglip_config(64, "bilinear", {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f});
  const std::shared_ptr<const ImageProcessor> siglip = ImageProcessor::for_model(c);
  EXPECT_EQ(siglip->tile_size(), 64);
  EXPECT_EQ(siglip->image_token(), "<|image_pad|>");
  const RgbImage photo =
      load_rgb_image(source_path("tests/goldens/image/inputs/photo_160x120.png"));
  const ProcessedImage p = siglip->process(photo);
  EXPECT_EQ(p.tiles, 1);
  EXPECT_EQ(p.pixels, siglip_preprocess(photo, 64, Resample::bilinear,
                                        {c.vision.image_mean, c.vision.image_std}));
  EXPECT_EQ(p.prompt.text, image_run(c.image_token, c.tokens_per_image()).text);
  EXPECT_EQ(p.prompt.image_tokens, c.tokens_per_image());
  EXPECT_EQ(p.prompt.image_tokens, 4);  // (64 / 16 / 2)²
}

// No aspect ratio kept, no crop: the tile is the normalized Pillow resize of the whole image, and
// a tile-sized image is not resampled at all.
TEST(SiglipProcessor, ResizesTheWholeImageToASquare) {
  const RgbImage photo =
      load_rgb_image(source_path("tests/goldens/image/inputs/photo_160x120.png"));
  const ClipNorm norm;
  EXPECT_EQ(siglip_preprocess(photo, 48, Resample::bicubic, norm),
            normalize_planar(resize(photo, 48, 48, Resample::bicubic), norm));
  const RgbImage square = resize(photo, 32, 32, Resample::bilinear);
  const std::vector<float> t = siglip_preprocess(square, 32, Resample::bilinear, norm);
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 32 * 32; ++i) {
      const float x = static_cast<float>(square.pixels[size_t(i) * 3 + ch] * (1.0 / 255.0));
      ASSERT_EQ(t[size_t(ch) * 32 * 32 + i], (x - norm.mean[ch]) / norm.std[ch]) << i;
    }
}

TEST(SiglipProcessor, ResampleComesFromTheConfig) {
  const RgbImage photo =
      load_rgb_image(source_path("tests/goldens/image/inputs/photo_160x120.png"));
  const ClipNorm norm;
  const auto with = [&](const std::string& resample) {
    return ImageProcessor::for_model(siglip_config(48, resample, norm.mean, norm.std))
        ->process(photo)
        .pixels;
  };
  EXPECT_EQ(with("bicubic"), siglip_preprocess(photo, 48, Resample::bicubic, norm));
  EXPECT_EQ(with("bilinear"), siglip_preprocess(photo, 48, Resample::bilinear, norm));
  EXPECT_EQ(with("lanczos"), siglip_preprocess(photo, 48, Resample::lanczos, norm));
  EXPECT_NE(with("bicubic"), with("bilinear"));
  EXPECT_NE(with("lanczos"), with("bicubic"));
  EXPECT_THAT(
      [&] { with("nearest"); },
      ThrowsMessage<Error>(HasSubstr("must be bilinear, bicubic or lanczos, got 'nearest'")));
}

TEST(SiglipProcessor, RejectsInvalidSize) {
  const RgbImage img{2, 2, std::vector<uint8_t>(12, 0)};
  EXPECT_THROW(siglip_preprocess(img, 0, Resample::bilinear, {}), Error);
}

}  // namespace
}  // namespace minivlm
