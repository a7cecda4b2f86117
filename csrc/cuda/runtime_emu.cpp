// The emulated runtime behind `cuda-emu`: device memory is 64-byte aligned host memory, every
// stream is the host thread (so in order by construction) and GEMM is the CPU back-end's. Kernels
// run on the SIMT emulator, which reads this memory directly.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "cpu/gemm.h"
#include "cuda/cost_model.h"
#include "cuda/runtime.h"

namespace minivlm::cuda {

namespace {

// A stream handle that is never dereferenced: distinct non-null values keep streams apart in logs.
cudaStream_t fake_stream(std::uintptr_t id) { return reinterpret_cast<cudaStream_t>(id); }

std::vector<float> to_f32(DType dtype, const void* p, std::size_t n) {
  std::vector<float> out(n);
  if (dtype == DType::f32) {
    std::memcpy(out.data(), p, n * sizeof(float));
  } else {
    const auto* h = static_cast<const uint16_t*>(p);
    for (std::size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(h[i]);
  }
  return out;
}

// Elements spanned by a row-major [rows, cols] matrix with leading dimension ld.
std::size_t span(int64_t rows, int64_t cols, int64_t ld) {
  return rows == 0 || cols == 0 ? 0 : static_cast<std::size_t>((rows - 1) * ld + cols);
}

class EmuRuntime final : public Runtime {
 public:
  void* malloc(std::size_t nbytes) override {
    const std::size_t rounded = (nbytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    MV_CHECK(p != nullptr, "cuda-emu: out of memory allocating ", nbytes, " bytes");
    return p;
  }
  void free(void* p) override { std::free(p); }

  // A shape-only cost recording (cuda/cost_model.h) leaves device memory untouched: copies to the
  // device are skipped and copies from it yield zeros.
  void copy_h2d(void* d, const void* s, std::size_t n, cudaStream_t) override {
    if (cost_mode() != CostMode::shape_only) move(d, s, n);
  }
  void copy_d2h(void* d, const void* s, std::size_t n, cudaStream_t) override {
    if (cost_mode() != CostMode::shape_only)
      move(d, s, n);
    else if (n != 0)
      std::memset(d, 0, n);
  }
  void copy_d2d(void* d, const void* s, std::size_t n, cudaStream_t) override {
    if (cost_mode() != CostMode::shape_only) move(d, s, n);
  }

  cudaStream_t create_stream() override { return fake_stream(++streams_); }
  void destroy_stream(cudaStream_t) override {}
  void synchronize(cudaStream_t) override {}

  void gemm(const Gemm& g, cudaStream_t) override {
    MV_CHECK(g.dtype == DType::f32 || g.dtype == DType::bf16, "cuda-emu gemm: unsupported dtype ",
             dtype_name(g.dtype), " (f32 or bf16)");
    if (g.m == 0 || g.n == 0) return;
    for (int64_t i = 0; i < g.batch; ++i) {
      const std::size_t esize = dtype_size(g.dtype);
      const char* a = static_cast<const char*>(g.a) + i * g.stride_a * esize;
      const char* b = static_cast<const char*>(g.b) + i * g.stride_b * esize;
      char* c = static_cast<char*>(g.c) + i * g.stride_c * esize;
      if (g.dtype == DType::f32) {
        cpu::gemm<float>(
            g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, reinterpret_cast<const float*>(a), g.lda,
            reinterpret_cast<const float*>(b), g.ldb, g.beta, reinterpret_cast<float*>(c), g.ldc);
        continue;
      }
      // bf16: widen the operands, accumulate in fp32, round C once.
      const std::vector<float> fa =
          to_f32(g.dtype, a, span(g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda));
      const std::vector<float> fb =
          to_f32(g.dtype, b, span(g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, g.ldb));
      std::vector<float> fc = to_f32(g.dtype, c, span(g.m, g.n, g.ldc));
      cpu::gemm<float>(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, fa.data(), g.lda, fb.data(),
                       g.ldb, g.beta, fc.data(), g.ldc);
      auto* hc = reinterpret_cast<uint16_t*>(c);
      for (int64_t r = 0; r < g.m; ++r)
        for (int64_t col = 0; col < g.n; ++col)
          hc[r * g.ldc + col] = f32_to_bf16(fc[static_cast<std::size_t>(r * g.ldc + col)]);
    }
  }

 private:
  static void move(void* d, const void* s, std::size_t n) {
    if (n != 0) std::memmove(d, s, n);
  }
  std::uintptr_t streams_ = 0;
};

}  // namespace

Runtime& emulated_runtime() {
  static EmuRuntime rt;
  return rt;
}

namespace {

// cuda-emu exists in every build.
const bool emu_registered = [] {
  static RuntimeAllocator alloc(emulated_runtime());
  register_allocator(DeviceType::cuda_emu, &alloc);
  return true;
}();

}  // namespace

Runtime& runtime_for(Device device) {
  MV_CHECK(device.type == DeviceType::cuda || device.type == DeviceType::cuda_emu,
           "runtime_for: ", device.str(), " is not a CUDA device");
  if (device.type == DeviceType::cuda_emu) return emulated_runtime();
  Runtime* rt = real_runtime();
  MV_CHECK(rt != nullptr, "device ", device.str(),
           " is not available in this build or on this machine");
  return *rt;
}

}  // namespace minivlm::cuda
