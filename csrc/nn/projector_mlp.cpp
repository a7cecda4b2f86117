// The "mlp" projector (projector.type): pixel shuffle (r = 1 in minimind-3v: none), then
// MiniMind-V's MMVisionProjector, LayerNorm(D·r², eps projector.layer_norm_eps) → Linear(D·r², H)
// → GELU (erf) → Linear(H, H), both Linears biased, under its own weight names
// vision_proj.mlp.{0,1,3}.* (index 2 is the GELU).
#include "nn/projector.h"
#include "ops/ops.h"

namespace minivlm {

namespace {

class MlpProjector : public Projector {
 public:
  explicit MlpProjector(const ModelConfig& c)
      : Projector(c.projector.pixel_shuffle), eps_(c.projector.layer_norm_eps) {
    const int64_t in = c.projector_in(), H = c.llm.hidden_size;
    ln_w_ = make_param("vision_proj.mlp.0.weight", {in});
    ln_b_ = make_param("vision_proj.mlp.0.bias", {in});
    fc1_w_ = make_param("vision_proj.mlp.1.weight", {H, in});
    fc1_b_ = make_param("vision_proj.mlp.1.bias", {H});
    fc2_w_ = make_param("vision_proj.mlp.3.weight", {H, H});
    fc2_b_ = make_param("vision_proj.mlp.3.bias", {H});
  }

  void params(ParamList& out) const override {
    for (const Tensor* t : {&ln_w_, &ln_b_, &fc1_w_, &fc1_b_, &fc2_w_, &fc2_b_})
      out.push_back({t->name(), *t});
  }

  void init(Rng& rng) override {
    init_constant(ln_w_, 1.0);
    init_constant(ln_b_, 0.0);
    init_normal(fc1_w_, rng, 0.02);
    init_constant(fc1_b_, 0.0);
    init_normal(fc2_w_, rng, 0.02);
    init_constant(fc2_b_, 0.0);
  }

 private:
  Tensor project(const Tensor& shuffled) const override {
    const Tensor a = ops::layernorm(shuffled, ln_w_, ln_b_, eps_);
    return ops::linear(ops::gelu(ops::linear(a, fc1_w_, fc1_b_)), fc2_w_, fc2_b_);
  }

  double eps_;
  Tensor ln_w_, ln_b_, fc1_w_, fc1_b_, fc2_w_, fc2_b_;
};

std::unique_ptr<Projector> make_mlp(const ModelConfig& c) {
  return std::make_unique<MlpProjector>(c);
}

void check_mlp(const ModelConfig& c, const std::string& origin) {
  MV_CHECK(c.projector.layer_norm_eps > 0, origin,
           ": projector.layer_norm_eps must be positive, got ", c.projector.layer_norm_eps);
}

const bool registered = projectors().add("mlp", {make_mlp, check_mlp});

}  // namespace

}  // namespace minivlm
