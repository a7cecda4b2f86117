// Where eval and infer compute: the device a `--device` value names, with the model's weights
// moved there.
#pragma once
#include <string>

#include "core/args.h"
#include "core/device.h"
#include "nn/decode_step.h"
#include "nn/vlm.h"

namespace minivlm {

// cpu (and auto or empty) keeps the model on the host, where generation takes the fast CPU decoder
// (cpu/decode.h); any other name resolves as the trainer's --device does (compute_device: the
// same error for cuda without a usable GPU) and moves every parameter there in fp32.
Device place_for_inference(MiniMindVLM& model, const std::string& requested_device);

// The decode options of `--decode-dtype` and `--decode-threads` for a model placed on `device`.
// Where the device has a decode fast path: its weights prepared once in --decode-dtype (default
// bf16: half the bytes per decoded token, which is bound by reading the weights, with logits within
// ~1% of f32's; i8 reads a quarter for ~2-6%, docs/performance.md) and --decode-threads (default
// auto: one row's decode is bound by memory bandwidth, which one core nearly saturates on some CPUs
// and not on others, so the weights' build measures which; cpu/decode.h). Elsewhere the op graph
// decodes with the model's fp32 weights, and either option is an error naming `tool`.
DecodeOptions decode_options(const MiniMindLM& lm, const cli::Args& args, const std::string& tool,
                             const Device& device);

}  // namespace minivlm
