#include "nn/module.h"

namespace minivlm {

void init_normal(Tensor& t, Rng& rng, double std) {
  MV_CHECK(t.dtype() == DType::f32 && t.device().is_cpu() && t.is_contiguous(),
           "init_normal expects a contiguous f32 CPU tensor, got ", t.desc());
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(rng.normal(0.0, std));
}

void init_constant(Tensor& t, double value) { t.fill_(value); }

Tensor make_param(const std::string& name, const Shape& shape) {
  Tensor t = Tensor::zeros(shape, DType::f32);
  t.set_name(name);
  return t;
}

}  // namespace minivlm
