// The projector seam: frozen-tower features → rows of the LLM's embedding width, chosen by the
// config's projector.type. Every projector first pixel-shuffles the [n, G², D] features by
// projector.pixel_shuffle r (SPEC §1.4; r = 1 is the identity), which fixes the image tokens per
// tile at (G / r)² (ModelConfig::tokens_per_image), then maps each D·r² row to H. The "linear"
// projector (nn/projector_linear.cpp, the default) is the first. A new projector is one file that
// derives from Projector and adds itself to projectors() under its type name.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/registry.h"
#include "nn/config.h"
#include "nn/module.h"

namespace minivlm {

class Projector {
 public:
  virtual ~Projector() = default;

  // features [n, G², D] → rows [n, (G / r)², H].
  Tensor forward(const Tensor& features) const;
  // Every tensor with its SPEC §1.6 name (vision_proj.*), in a fixed order.
  virtual void params(ParamList& out) const = 0;
  virtual void init(Rng& rng) = 0;

 protected:
  explicit Projector(int64_t pixel_shuffle) : r_(pixel_shuffle) {}
  // shuffled [n, N, D·r²] → [n, N, H].
  virtual Tensor project(const Tensor& shuffled) const = 0;

 private:
  int64_t r_;
};

// A projector type: how to build one, and the check of its own config fields (nullptr when it has
// none; throws naming `origin`, the field and its valid values).
struct ProjectorType {
  std::unique_ptr<Projector> (*make)(const ModelConfig& c);
  void (*check)(const ModelConfig& c, const std::string& origin);
};

// The projector types by projector.type; a projector's file adds its own at start-up:
//   const bool registered = projectors().add("linear", {make, check});
Registry<ProjectorType>& projectors();
// Both throw naming `origin`, projector.type and the valid types when the type is unknown.
void check_projector_config(const ModelConfig& c, const std::string& origin);
std::unique_ptr<Projector> make_projector(const ModelConfig& c);

}  // namespace minivlm
