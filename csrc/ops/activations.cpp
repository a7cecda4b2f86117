// Point-wise activations and softmax. Each forward is one loop; each backward one loop over
// (x, grad) computing g · f'(x), so no intermediate tensors are kept besides the input.
#include <cmath>
#include <type_traits>

#include "autograd/node.h"
#include "cpu/parallel_ranges.h"
#include "cpu/vec_exp.h"
#include "cuda/ops.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace minivlm::ops {

using detail::check_cpu;
using detail::dispatch_float;

namespace {

template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + cpu::exp_fast(-x));
}

enum class Act { silu, gelu, quick_gelu };

// The activation is a template argument so that each loop body is branch-free and vectorizes.
template <Act A, typename T>
T act_forward(T x) {
  if constexpr (A == Act::silu) return x * sigmoid(x);
  if constexpr (A == Act::gelu) return T(0.5) * x * (T(1) + std::erf(x * T(M_SQRT1_2)));
  if constexpr (A == Act::quick_gelu) return x * sigmoid(T(1.702) * x);
}

template <Act A, typename T>
T act_derivative(T x) {
  if constexpr (A == Act::silu) {
    const T s = sigmoid(x);
    return s * (T(1) + x * (T(1) - s));
  }
  if constexpr (A == Act::gelu) {
    const T cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
    const T pdf = std::exp(T(-0.5) * x * x) * T(0.3989422804014327);  // 1/sqrt(2π)
    return cdf + x * pdf;
  }
  if constexpr (A == Act::quick_gelu) {
    const T s = sigmoid(T(1.702) * x);
    return s + T(1.702) * x * s * (T(1) - s);
  }
}

// Calls f(std::integral_constant<Act, a>{}).
template <typename F>
void with_act(Act a, F&& f) {
  switch (a) {
    case Act::silu:
      return f(std::integral_constant<Act, Act::silu>{});
    case Act::gelu:
      return f(std::integral_constant<Act, Act::gelu>{});
    case Act::quick_gelu:
      return f(std::integral_constant<Act, Act::quick_gelu>{});
  }
}

const char* act_name(Act a) {
  switch (a) {
    case Act::silu:
      return "silu";
    case Act::gelu:
      return "gelu";
    case Act::quick_gelu:
      return "quick_gelu";
  }
  return "?";
}

Tensor activation_backward(Act a, const Tensor& x, const Tensor& g);

Tensor activation(Act a, const Tensor& x) {
  if (x.device().is_cuda_backend())
    return a == Act::silu ? cuda::silu(x) : a == Act::gelu ? cuda::gelu(x) : cuda::quick_gelu(x);
  const char* op = act_name(a);
  check_cpu(op, x);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(op, x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = xc.data<T>();
    T* po = out.data<T>();
    const int64_t n = out.numel();
    with_act(a, [&](auto act) {
      cpu::parallel_ranges(n, 16384, [&](int64_t i0, int64_t i1) {
        const T* __restrict x = px;
        T* __restrict o = po;
        for (int64_t i = i0; i < i1; ++i) o[i] = act_forward<act()>(x[i]);
      });
    });
  });
  const Tensor saved = xc.detach();
  return record(out, op, {x}, [a, saved](const Tensor& g) {
    return std::vector<Tensor>{activation_backward(a, saved, g)};
  });
}

Tensor activation_backward(Act a, const Tensor& x, const Tensor& g) {
  const Tensor gc = g.contiguous();
  Tensor dx = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(act_name(a), x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* pg = gc.data<T>();
    T* pd = dx.data<T>();
    const int64_t n = dx.numel();
    with_act(a, [&](auto act) {
      cpu::parallel_ranges(n, 16384, [&](int64_t i0, int64_t i1) {
        const T* __restrict x = px;
        const T* __restrict gr = pg;
        T* __restrict d = pd;
        for (int64_t i = i0; i < i1; ++i) d[i] = gr[i] * act_derivative<act()>(x[i]);
      });
    });
  });
  return dx;
}

}  // namespace

Tensor silu(const Tensor& x) { return activation(Act::silu, x); }
Tensor gelu(const Tensor& x) { return activation(Act::gelu, x); }
Tensor quick_gelu(const Tensor& x) { return activation(Act::quick_gelu, x); }

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  if (gate.device().is_cuda_backend()) return cuda::swiglu(gate, up);
  check_cpu("swiglu", gate);
  check_cpu("swiglu", up);
  detail::check_same_dtype("swiglu", gate, up);
  detail::check_shape("swiglu", "up", up, gate.shape());
  const Tensor gc = gate.contiguous(), uc = up.contiguous();
  Tensor out = Tensor::empty(gate.shape(), gate.dtype());
  dispatch_float("swiglu", gate, [&](auto zero) {
    using T = decltype(zero);
    const T* pg = gc.data<T>();
    const T* pu = uc.data<T>();
    T* po = out.data<T>();
    const int64_t n = out.numel();
    cpu::parallel_ranges(n, 16384, [&](int64_t i0, int64_t i1) {
      const T* __restrict gt = pg;
      const T* __restrict u = pu;
      T* __restrict o = po;
      for (int64_t i = i0; i < i1; ++i) o[i] = act_forward<Act::silu>(gt[i]) * u[i];
    });
  });
  const Tensor sg = gc.detach(), su = uc.detach();
  return record(out, "swiglu", {gate, up}, [sg, su](const Tensor& g) {
    const Tensor gg = g.contiguous();
    Tensor dgate = Tensor::empty(sg.shape(), sg.dtype());
    Tensor dup = Tensor::empty(sg.shape(), sg.dtype());
    dispatch_float("swiglu", sg, [&](auto zero) {
      using T = decltype(zero);
      const T* pg = sg.data<T>();
      const T* pu = su.data<T>();
      const T* pgo = gg.data<T>();
      T* dg = dgate.data<T>();
      T* du = dup.data<T>();
      const int64_t n = dgate.numel();
      cpu::parallel_ranges(n, 16384, [&](int64_t i0, int64_t i1) {
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
    return std::vector<Tensor>{dgate, dup};
  });
}

Tensor softmax(const Tensor& x) {
  if (x.device().is_cuda_backend()) return cuda::softmax(x);
  check_cpu("softmax", x);
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  dispatch_float("softmax", x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = xc.data<T>();
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
  const Tensor y = out.detach();
  return record(out, "softmax", {x}, [y, n, rows](const Tensor& g) {
    const Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(y.shape(), y.dtype());
    dispatch_float("softmax", y, [&](auto zero) {
      using T = decltype(zero);
      const T* py = y.data<T>();
      const T* pg = gc.data<T>();
      T* pd = dx.data<T>();
#pragma omp parallel for if (rows > 16) schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        double dot = 0;
        for (int64_t i = 0; i < n; ++i) dot += py[r * n + i] * pg[r * n + i];
        for (int64_t i = 0; i < n; ++i)
          pd[r * n + i] = py[r * n + i] * (pg[r * n + i] - static_cast<T>(dot));
      }
    });
    return std::vector<Tensor>{dx};
  });
}

}  // namespace minivlm::ops
