// SiLU, GELU, quick_gelu, SwiGLU and softmax on the CUDA back-end.
#include "autograd/node.h"
#include "cuda/backend.h"
#include "kernels/kernels.h"
#include "cuda/ops.h"

namespace minivlm::cuda {

namespace {

enum class Act { silu, gelu, quick_gelu };

Tensor activation(Act a, const Tensor& x) {
  const char* op = a == Act::silu ? "silu" : a == Act::gelu ? "gelu" : "quick_gelu";
  const Device dev = x.device();
  const Tensor xc = contiguous_input(x);
  const auto n = static_cast<std::size_t>(x.numel());
  Tensor out = device_empty(x.shape(), x.dtype(), dev);
  dispatch_storage(op, x, [&](auto zero) {
    using T = decltype(zero);
    if (a == Act::silu) {
      MV_KERNEL(dev, silu_forward, ptr<T>(out), ptr<const T>(xc), n, stream_for(dev));
    } else if (a == Act::gelu) {
      MV_KERNEL(dev, gelu_forward, ptr<T>(out), ptr<const T>(xc), n, stream_for(dev));
    } else {
      MV_KERNEL(dev, quick_gelu_forward, ptr<T>(out), ptr<const T>(xc), n, stream_for(dev));
    }
  });
  return record(out, op, {x}, [a, op, xc, n, dev](const Tensor& g) {
    const Tensor gc = contiguous_input(g);
    Tensor dx = device_empty(xc.shape(), xc.dtype(), dev);
    dispatch_storage(op, xc, [&](auto zero) {
      using T = decltype(zero);
      if (a == Act::silu) {
        MV_KERNEL(dev, silu_backward, ptr<T>(dx), ptr<const T>(gc), ptr<const T>(xc), n,
                  stream_for(dev));
      } else if (a == Act::gelu) {
        MV_KERNEL(dev, gelu_backward, ptr<T>(dx), ptr<const T>(gc), ptr<const T>(xc), n,
                  stream_for(dev));
      } else {
        MV_KERNEL(dev, quick_gelu_backward, ptr<T>(dx), ptr<const T>(gc), ptr<const T>(xc), n,
                  stream_for(dev));
      }
    });
    return std::vector<Tensor>{dx};
  });
}

}  // namespace

Tensor silu(const Tensor& x) { return activation(Act::silu, x); }
Tensor gelu(const Tensor& x) { return activation(Act::gelu, x); }
Tensor quick_gelu(const Tensor& x) { return activation(Act::quick_gelu, x); }

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  const Device dev = gate.device();
  check_device("swiglu", up, dev);
  MV_CHECK(gate.dtype() == up.dtype() && gate.shape() == up.shape(), "swiglu: gate ", gate.desc(),
           " and up ", up.desc(), " differ");
  const Tensor gc = contiguous_input(gate), uc = contiguous_input(up);
  const auto n = static_cast<std::size_t>(gate.numel());
  Tensor out = device_empty(gate.shape(), gate.dtype(), dev);
  dispatch_storage("swiglu", gate, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, swiglu_forward, ptr<T>(out), ptr<const T>(gc), ptr<const T>(uc), n,
              stream_for(dev));
  });
  return record(out, "swiglu", {gate, up}, [gc, uc, n, dev](const Tensor& g) {
    const Tensor go = contiguous_input(g);
    Tensor dgate = device_empty(gc.shape(), gc.dtype(), dev);
    Tensor dup = device_empty(gc.shape(), gc.dtype(), dev);
    dispatch_storage("swiglu", gc, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, swiglu_backward, ptr<T>(dgate), ptr<T>(dup), ptr<const T>(go),
                ptr<const T>(gc), ptr<const T>(uc), n, stream_for(dev));
    });
    return std::vector<Tensor>{dgate, dup};
  });
}

Tensor softmax(const Tensor& x) {
  const Device dev = x.device();
  const Tensor xc = contiguous_input(x);
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  Tensor out = device_empty(x.shape(), x.dtype(), dev);
  dispatch_storage("softmax", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, softmax_forward, ptr<T>(out), ptr<const T>(xc), static_cast<int>(rows),
              static_cast<int>(n), stream_for(dev));
  });
  const Tensor y = out.detach();
  return record(out, "softmax", {x}, [y, n, rows, dev](const Tensor& g) {
    const Tensor gc = contiguous_input(g);
    Tensor dx = device_empty(y.shape(), y.dtype(), dev);
    dispatch_storage("softmax", y, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, softmax_backward, ptr<T>(dx), ptr<const T>(gc), ptr<const T>(y),
                static_cast<int>(rows), static_cast<int>(n), stream_for(dev));
    });
    return std::vector<Tensor>{dx};
  });
}

}  // namespace minivlm::cuda
