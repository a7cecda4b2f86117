// The vision tower seam: a frozen encoder from pixel tiles to patch features, chosen by the
// config's vision.type. ClipVision (nn/clip.h) is the first. A new tower is one file that derives
// from VisionTower and adds itself to vision_towers() under its type name, plus the VisionConfig
// fields it needs.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/registry.h"
#include "nn/config.h"
#include "nn/module.h"

namespace minivlm {

class VisionTower {
 public:
  virtual ~VisionTower() = default;

  // pixels [n, channels, image_size, image_size] → features [n, grid², width], without autograd:
  // the tower is frozen. Throws naming both shapes when the pixels do not fit.
  Tensor features(const Tensor& pixels) const;
  // The same computation, recorded for autograd where grad mode is on and the weights require
  // grad (the tests of the ops' backward use it; training never does).
  virtual Tensor forward(const Tensor& pixels) const = 0;
  // Every tensor with its SPEC §1.6 name, in a fixed order.
  virtual void params(ParamList& out) const = 0;
  virtual void init(Rng& rng) = 0;

  int64_t channels() const { return c_.num_channels; }
  int64_t image_size() const { return c_.image_size; }
  int64_t grid() const { return c_.grid(); }  // features form a grid × grid patch grid

  // The pixels the patch convolution sees: the top-left grid·patch square (the "valid"
  // convolution of the Hugging Face towers leaves a remainder of image_size / patch_size unseen),
  // on `like`'s device and in its dtype.
  Tensor patch_pixels(const Tensor& pixels, const Tensor& like) const;
  int64_t width() const { return c_.hidden_size; }

 protected:
  explicit VisionTower(const VisionConfig& c) : c_(c) {}
  const VisionConfig c_;
};

// A tower type: how to build one, and the check of its own config fields (throws naming `origin`,
// the field and its valid values).
struct VisionTowerType {
  std::unique_ptr<VisionTower> (*make)(const VisionConfig& c);
  void (*check)(const VisionConfig& c, const std::string& origin);
};

// The tower types by vision.type; a tower's file adds its own at start-up:
//   const bool registered = vision_towers().add("clip", {make, check});
Registry<VisionTowerType>& vision_towers();
// Both throw naming `origin`, vision.type and the valid types when the type is unknown.
void check_vision_config(const VisionConfig& c, const std::string& origin);
std::unique_ptr<VisionTower> make_vision_tower(const VisionConfig& c);

}  // namespace minivlm
