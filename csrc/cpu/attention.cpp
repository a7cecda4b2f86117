// Fused scaled-dot-product attention on the CPU (causal or bidirectional, GQA).
//
// Forward works per (batch, query head) on blocks of kBlock query rows: S = Q Kᵀ·scale by GEMM,
// masked softmax in place, O = P V by GEMM; it saves only the per-row log-sum-exp. Backward works
// per (batch, kv head) — so dK/dV of a kv head are owned by one thread, no atomics — and for each
// query head of the group and each query block recomputes P = exp(S − lse), then
//   dV += Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − rowsum(dO ∘ O)),  dQ = scale·dS K,  dK += scale·dSᵀ
//   Q.
// Peak scratch is kBlock × Tk per thread, never Tq × Tk.
//
// Packed rows (seq_start defined): a query block is cut where a new sample starts, so every row of
// a block shares the sample's first key lo; the block then multiplies against keys [lo, lim) only
// — the keys of other samples are never touched — and masks causally inside the sample. Without
// seq_start lo is 0 and every block is kBlock rows, as the unpacked path always was.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/backend.h"
#include "cpu/gemm.h"
#include "cpu/vec_exp.h"

namespace minivlm::cpu {

namespace {

constexpr int64_t kBlock = 64;

struct AttnDims {
  int64_t B, Tq, Tk, nq, nkv, hd, group;
  double scale;
  bool causal;
  const int64_t* seq_start;  // [B, Tq] first key of each query's sample, or null
  // Keys visible to query row i: [.., visible(i)).
  int64_t visible(int64_t i) const {
    if (!causal) return Tk;
    return std::clamp<int64_t>(i + 1 + (Tk - Tq), 0, Tk);
  }
  // The query block of row b that starts at i0: [i0, end) with end ≤ i0 + kBlock, not crossing
  // the start of a sample; *lo receives the first key its rows see.
  int64_t block_end(int64_t b, int64_t i0, int64_t* lo) const {
    const int64_t i1 = std::min(Tq, i0 + kBlock);
    if (seq_start == nullptr) {
      *lo = 0;
      return i1;
    }
    const int64_t* ss = seq_start + b * Tq;
    *lo = ss[i0];
    int64_t end = i0 + 1;
    while (end < i1 && ss[end] == ss[i0]) ++end;
    return end;
  }
};

// S[r, j − lo] = scale · q_r · k_j for rows [i0, i1) and keys [lo, lim), masked to −inf.
template <typename T>
void scores(const AttnDims& d, const T* q, const T* k, int64_t i0, int64_t i1, int64_t lo,
            int64_t lim, T* s) {
  const int64_t n = lim - lo;
  gemm<T>(false, true, i1 - i0, n, d.hd, static_cast<T>(d.scale), q + i0 * d.nq * d.hd, d.nq * d.hd,
          k + lo * d.nkv * d.hd, d.nkv * d.hd, T(0), s, n);
  for (int64_t i = i0; i < i1; ++i) {
    T* row = s + (i - i0) * n;
    for (int64_t j = d.visible(i); j < lim; ++j) row[j - lo] = -std::numeric_limits<T>::infinity();
  }
}

template <typename T>
void attention_forward_rows(const AttnDims& d, const T* q, const T* k, const T* v, T* o, T* lse) {
#pragma omp parallel
  {
    std::vector<T> s(static_cast<size_t>(kBlock * d.Tk));
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < d.B; ++b) {
      for (int64_t h = 0; h < d.nq; ++h) {
        const int64_t kh = h / d.group;
        const T* qb = q + (b * d.Tq * d.nq + h) * d.hd;
        const T* kb = k + (b * d.Tk * d.nkv + kh) * d.hd;
        const T* vb = v + (b * d.Tk * d.nkv + kh) * d.hd;
        T* ob = o + (b * d.Tq * d.nq + h) * d.hd;
        T* lb = lse + (b * d.nq + h) * d.Tq;
        for (int64_t i0 = 0, i1, lo; i0 < d.Tq; i0 = i1) {
          i1 = d.block_end(b, i0, &lo);
          const int64_t lim = d.visible(i1 - 1), n = lim - lo;
          if (n <= 0) {
            for (int64_t i = i0; i < i1; ++i) {
              std::fill_n(ob + i * d.nq * d.hd, d.hd, T(0));
              lb[i] = -std::numeric_limits<T>::infinity();
            }
            continue;
          }
          scores(d, qb, kb, i0, i1, lo, lim, s.data());
          for (int64_t i = i0; i < i1; ++i) {
            T* row = s.data() + (i - i0) * n;
            T mx = -std::numeric_limits<T>::infinity();
            for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
            if (mx == -std::numeric_limits<T>::infinity()) {  // a row that sees no key
              std::fill_n(row, n, T(0));
              lb[i] = mx;
              continue;
            }
            double sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < n; ++j) {
              row[j] = exp_fast(row[j] - mx);
              sum += row[j];
            }
            const T inv = static_cast<T>(1.0 / sum);
#pragma omp simd
            for (int64_t j = 0; j < n; ++j) row[j] *= inv;
            lb[i] = static_cast<T>(mx + std::log(sum));
          }
          gemm<T>(false, false, i1 - i0, d.hd, n, T(1), s.data(), n, vb + lo * d.nkv * d.hd,
                  d.nkv * d.hd, T(0), ob + i0 * d.nq * d.hd, d.nq * d.hd);
        }
      }
    }
  }
}

template <typename T>
void attention_backward_rows(const AttnDims& d, const T* q, const T* k, const T* v, const T* o,
                             const T* lse, const T* dout, T* dq, T* dk, T* dv) {
#pragma omp parallel
  {
    std::vector<T> p(static_cast<size_t>(kBlock * d.Tk)), dp(static_cast<size_t>(kBlock * d.Tk));
    std::vector<T> rowdot(static_cast<size_t>(kBlock));
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < d.B; ++b) {
      for (int64_t kh = 0; kh < d.nkv; ++kh) {
        const T* kb = k + (b * d.Tk * d.nkv + kh) * d.hd;
        const T* vb = v + (b * d.Tk * d.nkv + kh) * d.hd;
        T* dkb = dk + (b * d.Tk * d.nkv + kh) * d.hd;
        T* dvb = dv + (b * d.Tk * d.nkv + kh) * d.hd;
        const int64_t ldq = d.nq * d.hd, ldk = d.nkv * d.hd;
        for (int64_t j = 0; j < d.Tk; ++j) {
          std::fill_n(dkb + j * ldk, d.hd, T(0));
          std::fill_n(dvb + j * ldk, d.hd, T(0));
        }
        for (int64_t h = kh * d.group; h < (kh + 1) * d.group; ++h) {
          const T* qb = q + (b * d.Tq * d.nq + h) * d.hd;
          const T* ob = o + (b * d.Tq * d.nq + h) * d.hd;
          const T* gb = dout + (b * d.Tq * d.nq + h) * d.hd;
          T* dqb = dq + (b * d.Tq * d.nq + h) * d.hd;
          const T* lb = lse + (b * d.nq + h) * d.Tq;
          for (int64_t i0 = 0, i1, lo; i0 < d.Tq; i0 = i1) {
            i1 = d.block_end(b, i0, &lo);
            const int64_t rows = i1 - i0, lim = d.visible(i1 - 1), n = lim - lo;
            if (n <= 0) {
              for (int64_t i = i0; i < i1; ++i) std::fill_n(dqb + i * ldq, d.hd, T(0));
              continue;
            }
            scores(d, qb, kb, i0, i1, lo, lim, p.data());
            for (int64_t i = i0; i < i1; ++i) {
              T* row = p.data() + (i - i0) * n;
              const T l = lb[i];
              if (l == -std::numeric_limits<T>::infinity()) {
                std::fill_n(row, n, T(0));
              } else {
#pragma omp simd
                for (int64_t j = 0; j < n; ++j) row[j] = exp_fast(row[j] - l);
              }
              double dot = 0;
              for (int64_t c = 0; c < d.hd; ++c) dot += gb[i * ldq + c] * ob[i * ldq + c];
              rowdot[i - i0] = static_cast<T>(dot);
            }
            const T* kl = kb + lo * ldk;
            const T* vl = vb + lo * ldk;
            // dV += Pᵀ dO
            gemm<T>(true, false, n, d.hd, rows, T(1), p.data(), n, gb + i0 * ldq, ldq, T(1),
                    dvb + lo * ldk, ldk);
            // dP = dO Vᵀ
            gemm<T>(false, true, rows, n, d.hd, T(1), gb + i0 * ldq, ldq, vl, ldk, T(0), dp.data(),
                    n);
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t j = 0; j < n; ++j) {
                const size_t at = static_cast<size_t>(r * n + j);
                dp[at] = p[at] * (dp[at] - rowdot[r]);
              }
            // dQ = scale · dS K ;  dK += scale · dSᵀ Q
            gemm<T>(false, false, rows, d.hd, n, static_cast<T>(d.scale), dp.data(), n, kl, ldk,
                    T(0), dqb + i0 * ldq, ldq);
            gemm<T>(true, false, n, d.hd, rows, static_cast<T>(d.scale), dp.data(), n,
                    qb + i0 * ldq, ldq, T(1), dkb + lo * ldk, ldk);
          }
        }
      }
    }
  }
}

AttnDims dims_of(const Tensor& q, const Tensor& k, bool causal, const Tensor& seq_start) {
  AttnDims d{q.size(0), q.size(1),
             k.size(1), q.size(2),
             k.size(2), q.size(3),
             1,         0.0,
             causal,    seq_start.defined() ? seq_start.data<int64_t>() : nullptr};
  d.group = d.nq / d.nkv;
  d.scale = 1.0 / std::sqrt(static_cast<double>(d.hd));
  return d;
}

}  // namespace

Backend::Attention CpuBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                 bool causal, const Tensor& seq_start) {
  const AttnDims d = dims_of(q, k, causal, seq_start);
  Attention a{Tensor::empty(q.shape(), q.dtype()), Tensor::empty({d.B, d.nq, d.Tq}, q.dtype())};
  dispatch_float("attention", q, [&](auto zero) {
    using T = decltype(zero);
    attention_forward_rows<T>(d, q.data<T>(), k.data<T>(), v.data<T>(), a.out.data<T>(),
                              a.lse.data<T>());
  });
  return a;
}

std::array<Tensor, 3> CpuBackend::attention_backward(const Tensor& dout, const Tensor& q,
                                                     const Tensor& k, const Tensor& v,
                                                     const Attention& saved, bool causal,
                                                     const Tensor& seq_start) {
  const AttnDims d = dims_of(q, k, causal, seq_start);
  Tensor dq = Tensor::empty(q.shape(), q.dtype());
  Tensor dk = Tensor::empty(k.shape(), k.dtype());
  Tensor dv = Tensor::empty(v.shape(), v.dtype());
  dispatch_float("attention", q, [&](auto zero) {
    using T = decltype(zero);
    attention_backward_rows<T>(d, q.data<T>(), k.data<T>(), v.data<T>(), saved.out.data<T>(),
                               saved.lse.data<T>(), dout.data<T>(), dq.data<T>(), dk.data<T>(),
                               dv.data<T>());
  });
  return {dq, dk, dv};
}

}  // namespace minivlm::cpu
