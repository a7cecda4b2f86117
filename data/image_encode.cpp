#include "core/error.h"
#include "data/image.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#pragma GCC diagnostic push
#if defined(__clang__)
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#endif
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace minivlm {

std::string encode_png(const RgbImage& img) {
  std::string out;
  auto append = [](void* ctx, void* data, int n) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(n));
  };
  const int ok = stbi_write_png_to_func(append, &out, img.width, img.height, 3, img.pixels.data(),
                                        img.width * 3);
  MV_CHECK(ok != 0, "PNG encoding of a ", img.width, "x", img.height, " image failed");
  return out;
}

}  // namespace minivlm
