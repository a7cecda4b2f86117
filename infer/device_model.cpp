#include "infer/device_model.h"

namespace minivlm {

Device place_for_inference(MiniMindVLM& model, const std::string& requested) {
  if (requested.empty() || requested == "auto") return kCPU;
  const Device d = compute_device(requested);
  for (NamedTensor& p : model.params()) p.tensor.set_data(p.tensor.detach().to(d));
  return d;
}

}  // namespace minivlm
