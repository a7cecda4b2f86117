// Point-wise activations, SwiGLU and softmax. Each forward is one loop; each backward one loop over
// (x, grad) computing g · f'(x), so no intermediate tensors are kept besides the input.
#include <cmath>
#include <type_traits>

#include "cpu/activation_math.h"
#include "cpu/backend.h"
#include "cpu/parallel_ranges.h"

namespace minivlm::cpu {

Tensor CpuBackend::activation_forward(Activation a, const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float("activation", x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const int64_t n = out.numel();
    with_activation(a, [&](auto act) {
      parallel_ranges(n, 16384, [&](int64_t i0, int64_t i1) {
        const T* __restrict xs = px;
        T* __restrict o = po;
        for (int64_t i = i0; i < i1; ++i) o[i] = act_forward<act()>(xs[i]);
      });
    });
  });
  return out;
}

Tensor CpuBackend::activation_backward(Activation a, const Tensor& dout, const Tensor& x) {
  Tensor dx = Tensor::empty(x.shape(), x.dtype());
  dispatch_float("activation", x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* pg = dout.data<T>();
    T* pd = dx.data<T>();
    const int64_t n = dx.numel();
    with_activation(a, [&](auto act) {
      parallel_ranges(n, 16384, [&](int64_t i0, int64_t i1) {
        const T* __restrict xs = px;
        const T* __restrict gr = pg;
        T* __restrict d = pd;
        for (int64_t i = i0; i < i1; ++i) d[i] = gr[i] * act_derivative<act()>(xs[i]);
      });
    });
  });
  return dx;
}

Tensor CpuBackend::swiglu_forward(const Tensor& gate, const Tensor& up) {
  Tensor out = Tensor::empty(gate.shape(), gate.dtype());
  dispatch_float("swiglu", gate, [&](auto zero) {
    using T = decltype(zero);
    const T* pg = gate.data<T>();
    const T* pu = up.data<T>();
    T* po = out.data<T>();
    const int64_t n = out.numel();
    parallel_ranges(n, 16384, [&](int64_t i0, int64_t i1) {
      const T* __restrict gt = pg;
      const T* __restrict u = pu;
      T* __restrict o = po;
      for (int64_t i = i0; i < i1; ++i) o[i] = act_forward<Activation::silu>(gt[i]) * u[i];
    });
  });
  return out;
}

std::array<Tensor, 2> CpuBackend::swiglu_backward(const Tensor& dout, const Tensor& gate,
                                                  const Tensor& up) {
  Tensor dgate = Tensor::empty(gate.shape(), gate.dtype());
  Tensor dup = Tensor::empty(gate.shape(), gate.dtype());
  dispatch_float("swiglu", gate, [&](auto zero) {
    using T = decltype(zero);
    const T* pg = gate.data<T>();
    const T* pu = up.data<T>();
    const T* pgo = dout.data<T>();
    T* dg = dgate.data<T>();
    T* du = dup.data<T>();
    const int64_t n = dgate.numel();
    parallel_ranges(n, 16384, [&](int64_t i0, int64_t i1) {
      const T* __restrict gt = pg;
      const T* __restrict u = pu;
      const T* __restrict go = pgo;
      T* __restrict dgt = dg;
      T* __restrict dup_ = du;
      for (int64_t i = i0; i < i1; ++i) {
        const T s = sigmoid(gt[i]);
        dgt[i] = go[i] * u[i] * (s * (T(1) + gt[i] * (T(1) - s)));
        dup_[i] = go[i] * (gt[i] * s);
      }
    });
  });
  return {dgate, dup};
}

Tensor CpuBackend::softmax_forward(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  dispatch_float("softmax", x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
#pragma omp parallel for if (rows > 16) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = px + r * n;
      T* yr = po + r * n;
      T mx = -INFINITY;
      for (int64_t i = 0; i < n; ++i) mx = std::max(mx, xr[i]);
      double s = 0;
      for (int64_t i = 0; i < n; ++i) {
        yr[i] = std::exp(xr[i] - mx);
        s += yr[i];
      }
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
    }
  });
  return out;
}

Tensor CpuBackend::softmax_backward(const Tensor& dout, const Tensor& y) {
  const int64_t n = y.dim() == 0 ? 1 : y.size(-1);
  const int64_t rows = n == 0 ? 0 : y.numel() / n;
  Tensor dx = Tensor::empty(y.shape(), y.dtype());
  dispatch_float("softmax", y, [&](auto zero) {
    using T = decltype(zero);
    const T* py = y.data<T>();
    const T* pg = dout.data<T>();
    T* pd = dx.data<T>();
#pragma omp parallel for if (rows > 16) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      double dot = 0;
      for (int64_t i = 0; i < n; ++i) dot += py[r * n + i] * pg[r * n + i];
      for (int64_t i = 0; i < n; ++i)
        pd[r * n + i] = py[r * n + i] * (pg[r * n + i] - static_cast<T>(dot));
    }
  });
  return dx;
}

}  // namespace minivlm::cpu
