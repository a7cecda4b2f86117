#include "nn/projector.h"

#include "ops/ops.h"

namespace minivlm {

Tensor Projector::forward(const Tensor& features) const {
  return project(ops::pixel_shuffle(features, r_));
}

Registry<ProjectorType>& projectors() {
  static Registry<ProjectorType> table("projector.type");
  return table;
}

void check_projector_config(const ModelConfig& c, const std::string& origin) {
  const ProjectorType& t = projectors().get(c.projector.type, origin);
  if (t.check) t.check(c, origin);
}

std::unique_ptr<Projector> make_projector(const ModelConfig& c) {
  return projectors().get(c.projector.type).make(c);
}

}  // namespace minivlm
