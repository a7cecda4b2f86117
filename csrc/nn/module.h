// Named parameters. Modules own their tensors as members and list them with their SPEC §1.6 names;
// the list is the single source for loading, saving, freezing and optimizer state.
#pragma once
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace minivlm {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};
using ParamList = std::vector<NamedTensor>;

// Parameter initialisers (in place, f32).
void init_normal(Tensor& t, Rng& rng, double std);
void init_constant(Tensor& t, double value);
// A new f32 parameter tensor of `shape`, named (for messages) and zero-filled.
Tensor make_param(const std::string& name, const Shape& shape);

}  // namespace minivlm
