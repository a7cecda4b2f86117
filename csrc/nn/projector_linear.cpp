// The "linear" projector (projector.type, the default): pixel shuffle, then one Linear
// y = x·Wᵀ (+ b when projector.bias), W [H, D·r²] — MiniMind-V's CLIP-era vision_proj and
// SmolVLM's connector (SPEC §1.4).
#include "nn/projector.h"
#include "ops/ops.h"

namespace minivlm {

namespace {

class LinearProjector : public Projector {
 public:
  explicit LinearProjector(const ModelConfig& c) : Projector(c.projector.pixel_shuffle) {
    weight_ = make_param("vision_proj.proj.weight", {c.llm.hidden_size, c.projector_in()});
    if (c.projector.bias) bias_ = make_param("vision_proj.proj.bias", {c.llm.hidden_size});
  }

  void params(ParamList& out) const override {
    out.push_back({weight_.name(), weight_});
    if (bias_.defined()) out.push_back({bias_.name(), bias_});
  }

  void init(Rng& rng) override {
    init_normal(weight_, rng, 0.02);
    if (bias_.defined()) init_constant(bias_, 0.0);
  }

 private:
  Tensor project(const Tensor& shuffled) const override {
    return ops::linear(shuffled, weight_, bias_);
  }

  Tensor weight_, bias_;  // [H, D·r²], [H] (bias only when configured)
};

std::unique_ptr<Projector> make_linear(const ModelConfig& c) {
  return std::make_unique<LinearProjector>(c);
}

const bool registered = projectors().add("linear", {make_linear, nullptr});

}  // namespace

}  // namespace minivlm
