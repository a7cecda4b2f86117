// The CUDA back-end: every primitive of core/backend.h as launches of the kernels in kernels/ and
// GEMMs of the device's runtime (cuda/runtime.h), storage f32 or bf16 with fp32 arithmetic. One
// object serves `cuda` (kernels::gpu, cudart and cuBLAS) and one `cuda-emu` (kernels::emu on the
// SIMT emulator, host memory and the CPU GEMM), so the same host code runs on both. One file per op
// family, named as its front-end in ops/ (cuda/norm.cpp ↔ ops/norm.cpp).
#pragma once
#include "core/backend.h"
#include "cuda/cost_model.h"
#include "cuda/runtime.h"
#include "kernels/kernels.h"

namespace minivlm::cuda {

using kernels::bf16;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const char* name) : name_(name) {}
  const char* name() const override { return name_; }
  bool computes(DType dtype) const override;

  Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& shape) override;
  Tensor scale(const Tensor& a, double s) override;
  Tensor sum_dim(const Tensor& a, int64_t dim) override;
  void add_bias_(const Tensor& y, const Tensor& bias) override;

  Tensor matmul(const MatmulPlan& p) override;

  Tensor activation_forward(Activation a, const Tensor& x) override;
  Tensor activation_backward(Activation a, const Tensor& dout, const Tensor& x) override;
  Tensor swiglu_forward(const Tensor& gate, const Tensor& up) override;
  std::array<Tensor, 2> swiglu_backward(const Tensor& dout, const Tensor& gate,
                                        const Tensor& up) override;
  Tensor softmax_forward(const Tensor& x) override;
  Tensor softmax_backward(const Tensor& dout, const Tensor& y) override;

  Norm rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps) override;
  std::array<Tensor, 2> rmsnorm_backward(const Tensor& dout, const Tensor& x, const Tensor& weight,
                                         const Norm& saved) override;
  Norm layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         double eps) override;
  std::array<Tensor, 3> layernorm_backward(const Tensor& dout, const Tensor& x,
                                           const Tensor& weight, const Norm& saved) override;

  Tensor rope(const Tensor& x, double theta, int64_t start_pos, const Tensor& positions,
              bool inverse) override;
  Attention attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                              const Tensor& seq_start) override;
  std::array<Tensor, 3> attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                           const Tensor& v, const Attention& saved, bool causal,
                                           const Tensor& seq_start) override;

  Tensor indices(const std::vector<int64_t>& values, Device device) override;
  Tensor embedding_forward(const Tensor& weight, const Tensor& ids) override;
  Tensor embedding_backward(const Tensor& dout, const Tensor& ids, int64_t vocab) override;
  CrossEntropy cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                     double denominator) override;
  Tensor cross_entropy_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,
                                const CrossEntropy& saved, double denominator) override;

  Tensor gather_rows(const Tensor& x, const Tensor& idx) override;
  Tensor index_add_rows(int64_t rows, const Tensor& idx, const Tensor& src) override;
  Tensor scatter_rows(const Tensor& base, const Tensor& idx, const Tensor& src) override;

  Tensor pixel_shuffle_forward(const Tensor& x, int64_t G, int64_t r) override;
  Tensor pixel_shuffle_backward(const Tensor& dout, const Shape& x_shape, int64_t G,
                                int64_t r) override;

  double grad_norm(const std::vector<Tensor>& grads) override;
  void adamw_update(std::span<const AdamWSlot> slots, const AdamWHyper& h) override;

 private:
  const char* name_;
};

// The back-end object of `cuda` or `cuda-emu`.
Backend& backend_of_type(DeviceType type);

// dst ← src on one device, any strides, f32 ↔ bf16 converted (core's DeviceCopyFn; false for
// other dtype pairs).
bool device_copy(const Tensor& dst, const Tensor& src);

// Every launch goes to the default stream: host code sees one in-order queue per device.
inline cudaStream_t stream_for(Device) { return nullptr; }

// Calls f(T{}) with T = float or bf16 for the tensor's dtype; other dtypes are an error naming op.
template <typename F>
decltype(auto) dispatch_storage(const char* op, const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::f32:
      return f(float{});
    case DType::bf16:
      return f(bf16{});
    default:
      MV_FAIL(op, ": unsupported dtype ", dtype_name(t.dtype()), " on ", t.device().str(),
              " (the CUDA back-end stores f32 or bf16)");
  }
}

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

}  // namespace minivlm::cuda

// MV_KERNEL(device, launcher, args...): the kernels/ launcher of the device's build, priced by
// kernels/cost.h's function of the same name when a CostRecording is active (cuda/cost_model.h;
// not launched when it is shape-only).
#if MINIVLM_HAVE_CUDA
#define MV_KERNEL(device, fn, ...)                                    \
  ::minivlm::cuda::launch_kernel(                                     \
      #fn, [&] { return ::minivlm::kernels::cost::fn(__VA_ARGS__); }, \
      [&] {                                                           \
        return (device).type == ::minivlm::DeviceType::cuda           \
                   ? ::minivlm::kernels::gpu::fn(__VA_ARGS__)         \
                   : ::minivlm::kernels::emu::fn(__VA_ARGS__);        \
      })
#else
// Without the CUDA back-end the only CUDA device that exists is cuda-emu.
#define MV_KERNEL(device, fn, ...)                                    \
  ::minivlm::cuda::launch_kernel(                                     \
      #fn, [&] { return ::minivlm::kernels::cost::fn(__VA_ARGS__); }, \
      [&] { return (void)(device), ::minivlm::kernels::emu::fn(__VA_ARGS__); })
#endif
