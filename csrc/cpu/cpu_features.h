// The x86-64 instruction sets the CPU back-end's run-time choices depend on, read once.
#pragma once

namespace minivlm::cpu {

struct CpuFeatures {
  bool avx2_fma = false;     // AVX2 and FMA
  bool avx512bw = false;     // AVX-512 F and BW
  bool avx512_bf16 = false;  // vdpbf16ps, vcvtne2ps2bf16
  bool avx512_vnni = false;  // vpdpbusd
  bool amx_bf16 = false;     // AMX tiles with bf16 products
};

// This CPU's; all false on other architectures.
const CpuFeatures& cpu_features();

}  // namespace minivlm::cpu
