// The SigLIP image processor (vision.type "siglip"): Hugging Face SiglipImageProcessor's Pillow
// backend (transformers 5's SiglipImageProcessorPil; siglip_preprocess, SPEC §2) to one tile of
// image_size², whose placeholder becomes N image tokens (SPEC §3), as CLIP's.
//
// The whole image is resized to image_size × image_size with vision.resample ("bilinear",
// "bicubic" or "lanczos", Pillow's 8-bit arithmetic, bit for bit; no aspect ratio kept, no crop),
// then each value is float(v · (1/255)) and (x − mean) / std per channel in float32 with
// vision.image_mean and vision.image_std: equal to transformers' float32 output. (transformers'
// default, torchvision-backed SiglipImageProcessor resizes in floating point on tensors instead, so
// its values are not these bit for bit.) Images are decoded by load_rgb_image, which composites
// alpha over white as transformers' convert_to_rgb does; MiniMind-V itself calls
// Image.convert("RGB") on RGBA and LA images first, which drops the alpha and keeps the stored
// colour of (semi-)transparent pixels, so for images with alpha the two differ. Images without
// alpha are the same either way.
#include "data/processor.h"
#include "nn/config.h"

namespace minivlm {

namespace {

class SiglipProcessor : public ImageProcessor {
 public:
  explicit SiglipProcessor(const ModelConfig& c)
      : ImageProcessor(c.vision.image_size, c.image_token),
        resample_(resample_from_name(c.vision.resample)),
        norm_{c.vision.image_mean, c.vision.image_std},
        prompt_(image_run(c.image_token, c.tokens_per_image())) {}

  ProcessedImage process(const RgbImage& image) const override {
    return {siglip_preprocess(image, static_cast<int>(tile_size()), resample_, norm_), 1, prompt_};
  }

 private:
  Resample resample_;
  ClipNorm norm_;
  ImagePrompt prompt_;
};

std::shared_ptr<const ImageProcessor> make_siglip(const ModelConfig& c) {
  return std::make_shared<SiglipProcessor>(c);
}

const bool registered = image_processors().add("siglip", make_siglip);

}  // namespace

}  // namespace minivlm
