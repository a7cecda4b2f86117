// Attention on the CUDA back-end: the fused kernels of kernels/flash_attention.cuh; a single query
// row (a decode step against a cache) takes the key-split decode kernel. Either saves the per-row
// log-sum-exp, from which the backward recomputes the probabilities.
#include <algorithm>

#include "cuda/backend.h"

namespace minivlm::cuda {

namespace {

kernels::AttentionShape shape_of(const Tensor& q, const Tensor& k, bool causal,
                                 const Tensor& seq_start) {
  MV_CHECK(q.size(3) % 8 == 0 && q.size(3) <= kernels::kFlashMaxHeadDim, "attention: head dim ",
           q.size(3), " of q ", q.desc(), " is not a multiple of 8 in [8, ",
           kernels::kFlashMaxHeadDim, "] (the CUDA back-end's flash kernels)");
  kernels::AttentionShape s;
  s.B = static_cast<int>(q.size(0));
  s.Tq = static_cast<int>(q.size(1));
  s.Tk = static_cast<int>(k.size(1));
  s.Hq = static_cast<int>(q.size(2));
  s.Hkv = static_cast<int>(k.size(2));
  s.d = static_cast<int>(q.size(3));
  s.causal = causal;
  s.seq_start = seq_start.defined() ? ptr<const int>(seq_start) : nullptr;
  return s;
}

}  // namespace

Backend::Attention CudaBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                  bool causal, const Tensor& seq_start) {
  const Device dev = q.device();
  const kernels::AttentionShape s = shape_of(q, k, causal, seq_start);
  Attention a{Tensor::empty(q.shape(), q.dtype(), dev),
              Tensor::empty({s.B, s.Hq, s.Tq}, DType::f32, dev)};
  dispatch_storage("attention", q, [&](auto zero) {
    using T = decltype(zero);
    if (s.Tq == 1) {  // one query: its sample starts at 0, seq_start changes nothing
      const auto floats = static_cast<int64_t>(kernels::flash_decode_scratch_floats(s));
      const Tensor scratch = Tensor::empty({std::max<int64_t>(floats, 1)}, DType::f32, dev);
      MV_KERNEL(dev, flash_attention_decode, ptr<T>(a.out), ptr<float>(a.lse), ptr<float>(scratch),
                ptr<const T>(q), ptr<const T>(k), ptr<const T>(v), s, stream_for(dev));
    } else {
      MV_KERNEL(dev, flash_attention_forward, ptr<T>(a.out), ptr<float>(a.lse), ptr<const T>(q),
                ptr<const T>(k), ptr<const T>(v), s, stream_for(dev));
    }
  });
  return a;
}

std::array<Tensor, 3> CudaBackend::attention_backward(const Tensor& dout, const Tensor& q,
                                                      const Tensor& k, const Tensor& v,
                                                      const Attention& saved, bool causal,
                                                      const Tensor& seq_start) {
  const Device dev = q.device();
  const kernels::AttentionShape s = shape_of(q, k, causal, seq_start);
  Tensor dq = Tensor::empty(q.shape(), q.dtype(), dev);
  Tensor dk = Tensor::empty(k.shape(), k.dtype(), dev);
  Tensor dv = Tensor::empty(v.shape(), v.dtype(), dev);
  Tensor scratch = Tensor::empty({static_cast<int64_t>(kernels::flash_backward_scratch_floats(s))},
                                 DType::f32, dev);
  dispatch_storage("attention", q, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, flash_attention_backward, ptr<T>(dq), ptr<T>(dk), ptr<T>(dv),
              ptr<float>(scratch), ptr<const T>(dout), ptr<const T>(q), ptr<const T>(k),
              ptr<const T>(v), ptr<const T>(saved.out), ptr<const float>(saved.lse), s,
              stream_for(dev));
  });
  return {dq, dk, dv};
}

}  // namespace minivlm::cuda
