// The CLIP image processor (vision.type "clip"): CLIPImageProcessor's resize, center crop and
// normalization (clip_preprocess, SPEC §2) to one tile of image_size², whose placeholder becomes N
// image tokens (SPEC §3).
#include "data/processor.h"
#include "nn/config.h"

namespace minivlm {

namespace {

class ClipProcessor : public ImageProcessor {
 public:
  explicit ClipProcessor(const ModelConfig& c)
      : ImageProcessor(c.vision.image_size, c.image_token),
        norm_{c.vision.image_mean, c.vision.image_std},
        prompt_(image_run(c.image_token, c.tokens_per_image())) {}

  ProcessedImage process(const RgbImage& image) const override {
    return {clip_preprocess(image, static_cast<int>(tile_size()), norm_), 1, prompt_};
  }

 private:
  ClipNorm norm_;
  ImagePrompt prompt_;
};

std::shared_ptr<const ImageProcessor> make_clip(const ModelConfig& c) {
  return std::make_shared<ClipProcessor>(c);
}

const bool registered = image_processors().add("clip", make_clip);

}  // namespace

}  // namespace minivlm
