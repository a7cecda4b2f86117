#include "infer/device_model.h"

namespace minivlm {

Device place_for_inference(MiniMindVLM& model, const std::string& requested) {
  if (requested.empty() || requested == "auto") return kCPU;
  const Device d = compute_device(requested);
  for (NamedTensor& p : model.params()) p.tensor.set_data(p.tensor.detach().to(d));
  return d;
}

DecodeOptions decode_options(const MiniMindLM& lm, const cli::Args& a, const std::string& tool,
                             const Device& device) {
  DecodeOptions o;
  if (has_decode_fast_path(lm)) {
    o.dtype = parse_decode_dtype(a.get("decode-dtype", "bf16"));
    o.weights = prepare_decode_weights(lm, o.dtype);
  } else {
    MV_CHECK(a.get("decode-dtype", "f32") == "f32" && !a.has("decode-threads"), tool,
             ": --decode-dtype ", a.get("decode-dtype", "f32"),
             " and --decode-threads set the CPU decoder; --device ", device.str(),
             " decodes with the model's fp32 weights");
  }
  o.threads = parse_decode_threads(a.get("decode-threads", "auto"));
  return o;
}

}  // namespace minivlm
