// Image files (PNG / JPEG / GIF / BMP): header check, then decoding to RGB. The pixel limit is
// lowered so that each input decodes quickly; the check is the same at any limit.
#include <cstdlib>

#include "core/error.h"
#include "data/image.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("MINIVLM_MAX_IMAGE_PIXELS", "4000000", 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivlm;
  try {
    const RgbImage img = decode_rgb_image(data, size, "fuzz");
    if (img.width <= 0 || img.height <= 0 ||
        img.pixels.size() != static_cast<size_t>(img.width) * img.height * 3)
      __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
