#include "infer/device_model.h"

#include "core/backend.h"

namespace minivlm {

Device place_for_inference(MiniMindVLM& model, const std::string& requested, DType dtype) {
  if (requested.empty() || requested == "auto") return place_for_inference(model, "cpu", dtype);
  const Device d = compute_device(requested);
  if (d.is_cpu()) {
    MV_CHECK(dtype == DType::f32, "the CPU keeps the model in fp32, not ", dtype_name(dtype));
    return d;
  }
  MV_CHECK(dtype == DType::f32 || backend_for(d).computes(dtype), "the ", backend_for(d).name(),
           " back-end does not compute in ", dtype_name(dtype), "; --device ", d.str(),
           " runs the model in fp32");
  for (NamedTensor& p : model.params()) {
    Tensor t = p.tensor.detach().to(d);
    if (dtype != DType::f32) t = t.to(dtype);  // converted on the device
    p.tensor.set_data(t);
  }
  return d;
}

InferencePlacement place_for_inference(MiniMindVLM& model, const cli::Args& a,
                                       const std::string& tool) {
  const std::string requested = a.get("device", "auto");
  InferencePlacement p;
  if (requested.empty() || requested == "auto") {
    p.device = place_for_inference(model, "cpu");
    return p;
  }
  const Device d = compute_device(requested);
  if (d.is_cpu()) {
    p.device = place_for_inference(model, requested);
    return p;
  }
  const std::string name = a.get("decode-dtype", "bf16");
  const DecodeDtype want = parse_decode_dtype(name);
  MV_CHECK(want != DecodeDtype::i8, tool, ": --decode-dtype i8 is the CPU decoder's; --device ",
           d.str(), " computes in bf16 (the default) or f32");
  p.dtype = want == DecodeDtype::bf16 ? DType::bf16 : DType::f32;
  MV_CHECK(p.dtype == DType::f32 || backend_for(d).computes(p.dtype), tool, ": --decode-dtype ",
           name, ": the ", backend_for(d).name(), " back-end does not compute in it; --device ",
           d.str(), " takes --decode-dtype f32");
  p.device = place_for_inference(model, d.str(), p.dtype);
  return p;
}

DecodeOptions decode_options(const MiniMindLM& lm, const cli::Args& a, const std::string& tool,
                             const Device& device) {
  DecodeOptions o;
  if (has_decode_fast_path(lm)) {
    o.dtype = parse_decode_dtype(a.get("decode-dtype", "bf16"));
    o.weights = prepare_decode_weights(lm, o.dtype);
    o.threads = parse_decode_threads(a.get("decode-threads", "auto"));
    return o;
  }
  MV_CHECK(!a.has("decode-threads"), tool,
           ": --decode-threads sets the CPU decoder's threads; --device ", device.str(),
           " decodes through the op graph on the back-end's own");
  const DType w = lm.embed_tokens.dtype();
  MV_CHECK(w == DType::f32 || w == DType::bf16, tool, ": a model in ", dtype_name(w),
           " has no decode dtype");
  o.dtype = w == DType::bf16 ? DecodeDtype::bf16 : DecodeDtype::f32;
  return o;
}

}  // namespace minivlm
