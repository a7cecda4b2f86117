// safetensors files: open (header, offsets, coverage) and read every tensor's bytes.
#include "core/error.h"
#include "fuzz/fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivlm;
  const std::string& path = fuzz::write_scratch(data, size, "safetensors");
  try {
    const SafeTensorsFile f = SafeTensorsFile::open(path);
    uint8_t sum = 0;
    for (const std::string& name : f.names()) {
      const Tensor t = f.get(name);
      if (t.shape() != f.shape(name) || t.dtype() != f.dtype(name)) __builtin_trap();
      const auto* p = static_cast<const uint8_t*>(t.raw_data());
      for (size_t i = 0; i < t.nbytes(); ++i) sum ^= p[i];
    }
    for (const auto& [k, v] : f.metadata()) sum ^= static_cast<uint8_t>(k.size() + v.size());
    volatile uint8_t sink = sum;
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}
