#include "nn/vision_tower.h"

#include "autograd/node.h"

namespace minivlm {

Tensor VisionTower::features(const Tensor& pixels) const {
  MV_CHECK(pixels.dim() == 4 && pixels.size(1) == channels() && pixels.size(2) == image_size() &&
               pixels.size(3) == image_size(),
           "vision tower: pixels ", shape_str(pixels.shape()), " do not match [n, ", channels(),
           ", ", image_size(), ", ", image_size(), "]");
  NoGradGuard frozen;
  return forward(pixels);
}

Tensor VisionTower::patch_pixels(const Tensor& pixels, const Tensor& like) const {
  Tensor px = pixels.to(like.device()).to(like.dtype());
  const int64_t seen = grid() * c_.patch_size;
  if (seen != image_size()) px = px.narrow(2, 0, seen).narrow(3, 0, seen).contiguous();
  return px;
}

Registry<VisionTowerType>& vision_towers() {
  static Registry<VisionTowerType> table("vision.type");
  return table;
}

void check_vision_config(const VisionConfig& c, const std::string& origin) {
  vision_towers().get(c.type, origin).check(c, origin);
}

std::unique_ptr<VisionTower> make_vision_tower(const VisionConfig& c) {
  return vision_towers().get(c.type).make(c);
}

}  // namespace minivlm
