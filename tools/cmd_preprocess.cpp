// `minivlm preprocess`: one image through the CLIP image processor (SPEC §2), saved for
// inspection or comparison with other implementations.
#include <cstdio>

#include "core/tensor.h"
#include "data/processor.h"
#include "io/safetensors.h"
#include "nn/config.h"
#include "tools/command.h"

MINIVLM_COMMAND("preprocess",
                "decode an image and write its CLIP pixel_values [3,S,S] f32 as safetensors") {
  const minivlm::cli::Args a(args, {{"image", true}, {"size", true}, {"out", true}}, "preprocess");
  const std::string image = a.get("image"), out = a.get("out");
  const int size = a.get_int("size", 224);
  MV_CHECK(size > 0, "preprocess: --size must be positive, got ", size);
  minivlm::ModelConfig clip;  // the "clip" processor with its default mean and std
  clip.vision.image_size = size;
  const minivlm::RgbImage img = minivlm::load_rgb_image(image);
  const minivlm::ProcessedImage p = minivlm::ImageProcessor::for_model(clip)->process(img);
  const minivlm::Tensor pixels = minivlm::Tensor::from_vector(p.pixels, {3, size, size});
  minivlm::save_safetensors(
      out, {{"pixel_values", pixels}},
      {{"source", image},
       {"source_size", std::to_string(img.width) + "x" + std::to_string(img.height)}});
  std::printf("%s: %dx%d -> pixel_values [3, %d, %d] in %s\n", image.c_str(), img.width, img.height,
              size, size, out.c_str());
  return 0;
}
