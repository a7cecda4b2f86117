// Where eval and infer compute: the device a `--device` value names, with the model's weights
// moved there.
#pragma once
#include <string>

#include "core/device.h"
#include "nn/vlm.h"

namespace minivlm {

// cpu (and auto or empty) keeps the model on the host, where generation takes the fast CPU decoder
// (cpu/decode.h); any other name resolves as the trainer's --device does (compute_device: the
// same error for cuda without a usable GPU) and moves every parameter there in fp32.
Device place_for_inference(MiniMindVLM& model, const std::string& requested_device);

}  // namespace minivlm
