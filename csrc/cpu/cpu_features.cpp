#include "cpu/cpu_features.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace minivlm::cpu {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__)
    __builtin_cpu_init();
    c.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    c.avx512bw = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    c.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
    c.avx512_vnni = __builtin_cpu_supports("avx512vnni");
    // AMX-BF16: cpuid leaf 7, sub-leaf 0, EDX bit 22 (GCC 12 has no __builtin_cpu_supports name).
    unsigned a = 0, b = 0, cx = 0, d = 0;
    c.amx_bf16 = __get_cpuid_count(7, 0, &a, &b, &cx, &d) != 0 && (d & (1u << 22)) != 0;
#endif
    return c;
  }();
  return f;
}

}  // namespace minivlm::cpu
