// Where eval, infer and serve compute: the device a `--device` value names, with the model's
// weights moved there in the element type the op graph computes in (`--decode-dtype`).
#pragma once
#include <string>

#include "core/args.h"
#include "core/device.h"
#include "nn/decode_step.h"
#include "nn/vlm.h"

namespace minivlm {

// cpu (and auto or empty) keeps the model on the host in fp32, where generation takes the fast
// CPU decoder (cpu/decode.h); any other name resolves as the trainer's --device does
// (compute_device: the same error for cuda without a usable GPU) and moves every parameter there,
// then converts it there to `dtype` (one fp32 copy per parameter on the device at a time).
Device place_for_inference(MiniMindVLM& model, const std::string& requested_device,
                           DType dtype = DType::f32);

// The command line's placement: --device, and on a device other than the CPU the element type of
// its weights, activations and KV cache from --decode-dtype: bf16 by default where the back-end
// computes bf16 (half the bytes of fp32; norms, softmax, attention and the loss accumulate in fp32
// inside the kernels; logits come back to the host as fp32 for sampling), f32 for today's fp32
// path; i8 there, or bf16 on a back-end without it, is an error naming `tool`, the option and the
// device. On the CPU the weights stay fp32 and --decode-dtype is the fast decoder's
// (decode_options).
struct InferencePlacement {
  Device device = kCPU;
  DType dtype = DType::f32;  // the model's parameters' dtype after placement
};
InferencePlacement place_for_inference(MiniMindVLM& model, const cli::Args& args,
                                       const std::string& tool);

// The decode options of `--decode-dtype` and `--decode-threads` for a model placed on `device`.
// Where the device has a decode fast path: its weights prepared once in --decode-dtype (default
// bf16: half the bytes per decoded token, which is bound by reading the weights, with logits within
// ~1% of f32's; i8 reads a quarter for ~2-6%, docs/performance.md) and --decode-threads (default
// auto: one row's decode is bound by memory bandwidth, which one core nearly saturates on some CPUs
// and not on others, so the weights' build measures which; cpu/decode.h). Elsewhere the op graph
// decodes with the model's own weights and a KV cache of their dtype (place_for_inference), which
// `dtype` then names; --decode-threads there is an error naming `tool`.
DecodeOptions decode_options(const MiniMindLM& lm, const cli::Args& args, const std::string& tool,
                             const Device& device);

}  // namespace minivlm
