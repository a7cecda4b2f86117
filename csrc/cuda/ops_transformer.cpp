// Rotary embedding, attention, token embedding and the fused cross-entropy on the CUDA back-end.
#include <algorithm>
#include <vector>

#include "autograd/node.h"
#include "cuda/backend.h"
#include "cuda/ops.h"

namespace minivlm::cuda {

namespace {

// Token ids (any device, i32 or i64) checked against [0, V) and uploaded as i32 to `dev`.
Tensor device_ids(const char* op, const Tensor& ids, int64_t V, Device dev, int64_t ignore_index,
                  bool allow_ignore) {
  const std::vector<int64_t> v = ids.to_int_vector();
  std::vector<int32_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (allow_ignore && v[i] == ignore_index) {
      out[i] = kernels::kIgnoreIndex;
      continue;
    }
    MV_CHECK(v[i] >= 0 && v[i] < V, op, ": id ", v[i], " at position ", i, " is outside [0, ", V,
             ")");
    out[i] = static_cast<int32_t>(v[i]);
  }
  return Tensor::from_vector(out, {static_cast<int64_t>(out.size())}).to(dev);
}

}  // namespace

Tensor rope(const Tensor& x, double theta, int64_t start_pos) {
  MV_CHECK(x.dim() == 4, "rope: expected [B, T, heads, head_dim], got ", x.desc());
  MV_CHECK(x.size(3) % 2 == 0, "rope: head_dim must be even, got ", x.size(3));
  const Device dev = x.device();
  const int B = static_cast<int>(x.size(0)), T = static_cast<int>(x.size(1));
  const int nh = static_cast<int>(x.size(2)), hd = static_cast<int>(x.size(3));
  const int start = static_cast<int>(start_pos);
  const Tensor xc = contiguous_input(x);
  Tensor out = device_empty(x.shape(), x.dtype(), dev);
  dispatch_storage("rope", x, [&](auto zero) {
    using S = decltype(zero);
    MV_KERNEL(dev, rope_forward, ptr<S>(out), ptr<const S>(xc), B, T, nh, hd, theta, start,
              stream_for(dev));
  });
  return record(out, "rope", {x}, [=](const Tensor& g) {
    const Tensor gc = contiguous_input(g);
    Tensor dx = device_empty(g.shape(), g.dtype(), dev);
    dispatch_storage("rope", gc, [&](auto zero) {
      using S = decltype(zero);
      MV_KERNEL(dev, rope_backward, ptr<S>(dx), ptr<const S>(gc), B, T, nh, hd, theta, start,
                stream_for(dev));
    });
    return std::vector<Tensor>{dx};
  });
}

// The fused kernels of kernels/flash_attention.cuh; a single query row (a decode step against a
// cache) takes the key-split decode kernel. Either saves the per-row log-sum-exp, from which the
// backward recomputes the probabilities.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const Device dev = q.device();
  check_device("attention", k, dev);
  check_device("attention", v, dev);
  MV_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.shape() == v.shape() &&
               q.size(0) == k.size(0) && q.size(3) == k.size(3) && k.size(2) > 0 &&
               q.size(2) % k.size(2) == 0 && q.dtype() == k.dtype() && q.dtype() == v.dtype(),
           "attention: expected q [B, Tq, nq, hd], k and v [B, Tk, nkv, hd] with nq % nkv == 0, "
           "got ",
           q.desc(), ", ", k.desc(), ", ", v.desc());
  MV_CHECK(q.size(3) % 8 == 0 && q.size(3) <= kernels::kFlashMaxHeadDim, "attention: head dim ",
           q.size(3), " of q ", q.desc(), " is not a multiple of 8 in [8, ",
           kernels::kFlashMaxHeadDim, "]");
  kernels::AttentionShape s;
  s.B = static_cast<int>(q.size(0));
  s.Tq = static_cast<int>(q.size(1));
  s.Tk = static_cast<int>(k.size(1));
  s.Hq = static_cast<int>(q.size(2));
  s.Hkv = static_cast<int>(k.size(2));
  s.d = static_cast<int>(q.size(3));
  s.causal = causal;
  const Tensor qc = contiguous_input(q), kc = contiguous_input(k), vc = contiguous_input(v);
  Tensor out = device_empty(q.shape(), q.dtype(), dev);
  const Tensor lse = device_empty({s.B, s.Hq, s.Tq}, DType::f32, dev);
  dispatch_storage("attention", q, [&](auto zero) {
    using T = decltype(zero);
    if (s.Tq == 1) {
      const auto floats = static_cast<int64_t>(kernels::flash_decode_scratch_floats(s));
      const Tensor scratch = device_empty({std::max<int64_t>(floats, 1)}, DType::f32, dev);
      MV_KERNEL(dev, flash_attention_decode, ptr<T>(out), ptr<float>(lse), ptr<float>(scratch),
                ptr<const T>(qc), ptr<const T>(kc), ptr<const T>(vc), s, stream_for(dev));
    } else {
      MV_KERNEL(dev, flash_attention_forward, ptr<T>(out), ptr<float>(lse), ptr<const T>(qc),
                ptr<const T>(kc), ptr<const T>(vc), s, stream_for(dev));
    }
  });
  const Tensor od = out.detach();
  return record(out, "attention", {q, k, v}, [=](const Tensor& g) {
    const Tensor gc = contiguous_input(g);
    Tensor dq = device_empty(qc.shape(), qc.dtype(), dev);
    Tensor dk = device_empty(kc.shape(), kc.dtype(), dev);
    Tensor dv = device_empty(vc.shape(), vc.dtype(), dev);
    Tensor scratch = device_empty({s.B, s.Hq, s.Tq}, DType::f32, dev);
    dispatch_storage("attention", qc, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, flash_attention_backward, ptr<T>(dq), ptr<T>(dk), ptr<T>(dv),
                ptr<float>(scratch), ptr<const T>(gc), ptr<const T>(qc), ptr<const T>(kc),
                ptr<const T>(vc), ptr<const T>(od), ptr<const float>(lse), s, stream_for(dev));
    });
    return std::vector<Tensor>{dq, dk, dv};
  });
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  MV_CHECK(weight.dim() == 2, "embedding: weight must be [vocab, hidden], got ", weight.desc());
  MV_CHECK(ids.dtype() == DType::i32 || ids.dtype() == DType::i64,
           "embedding: ids must be i32 or i64, got ", ids.desc());
  const Device dev = weight.device();
  const int V = static_cast<int>(weight.size(0)), C = static_cast<int>(weight.size(1));
  const Tensor idc = device_ids("embedding", ids, V, dev, 0, false);
  const int N = static_cast<int>(idc.numel());
  Shape out_shape = ids.shape();
  out_shape.push_back(C);
  const Tensor wc = contiguous_input(weight);
  Tensor out = device_empty(out_shape, weight.dtype(), dev);
  dispatch_storage("embedding", weight, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, embedding_forward, ptr<T>(out), ptr<const int>(idc), ptr<const T>(wc), N, V, C,
              stream_for(dev));
  });
  const DType dt = weight.dtype();
  return record(out, "embedding", {weight, ids}, [=](const Tensor& g) {
    const Tensor gc = contiguous_input(g);
    Tensor dw = device_empty({V, C}, dt, dev);
    dispatch_storage("embedding", dw, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, embedding_backward, ptr<T>(dw), ptr<const T>(gc), ptr<const int>(idc), N, V, C,
                stream_for(dev));
    });
    return std::vector<Tensor>{dw, Tensor()};
  });
}

// The kernel writes (softmax − onehot) · 1/denominator over a copy of the logits in the forward;
// the backward only scales it by the incoming gradient (a device scalar: no host round trip).
// The loss is fp32 whatever the logits' storage.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     double denominator) {
  MV_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, V], got ", logits.desc());
  MV_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0), "cross_entropy: targets ",
           targets.desc(), " do not match logits ", logits.desc());
  const Device dev = logits.device();
  const int N = static_cast<int>(logits.size(0)), V = static_cast<int>(logits.size(1));
  const Tensor tc = device_ids("cross_entropy", targets, V, dev, ignore_index, true);
  int64_t count = 0;
  for (int64_t t : tc.to_int_vector()) count += t != kernels::kIgnoreIndex;
  const double denom = denominator > 0 ? denominator : static_cast<double>(count);
  const Tensor dlogits = strided_copy(logits);
  Tensor losses = device_empty({N}, DType::f32, dev);
  Tensor out = Tensor::zeros({}, DType::f32, dev);
  if (denom > 0) {
    dispatch_storage("cross_entropy", logits, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, cross_entropy_forward_backward, ptr<float>(losses), ptr<T>(dlogits),
                ptr<const int>(tc), N, V, static_cast<float>(1.0 / denom), stream_for(dev));
    });
    MV_KERNEL(dev, reduce_sum, ptr<float>(out), ptr<const float>(losses), N, stream_for(dev));
    MV_KERNEL(dev, scale, ptr<float>(out), ptr<const float>(out), static_cast<float>(1.0 / denom),
              1, stream_for(dev));
  }
  return record(out, "cross_entropy", {logits, targets}, [=](const Tensor& g) {
    Tensor dx = Tensor::zeros({N, V}, dlogits.dtype(), dev);
    if (denom <= 0) return std::vector<Tensor>{dx, Tensor()};
    dx.copy_(dlogits);
    const Tensor gs = contiguous_input(g.to(DType::f32));
    dispatch_storage("cross_entropy", dx, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, scale_inplace, ptr<T>(dx), static_cast<std::size_t>(dx.numel()),
                ptr<const float>(gs), stream_for(dev));
    });
    return std::vector<Tensor>{dx, Tensor()};
  });
}

}  // namespace minivlm::cuda
