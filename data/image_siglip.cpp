// SiglipImageProcessor geometry and normalization (SPEC §2): the whole image resized to a square.
#include "core/error.h"
#include "data/image.h"

namespace minivlm {

std::vector<float> siglip_preprocess(const RgbImage& img, int size, Resample resample,
                                     const ClipNorm& norm) {
  MV_CHECK(size > 0, "siglip_preprocess: invalid size ", size);
  return normalize_planar(resize(img, size, size, resample), norm);
}

}  // namespace minivlm
