// Every op of csrc/ops/ops.h, one table row per case, each run by tests/unit/op_table.h: the CPU
// forward against a float64 reference written here from the math, every input gradient against
// central finite differences, and every device under test against the CPU.
//
// To add a case, push one OpCase in build_table(): its name, its float64 inputs (normal() draws
// them; index tensors are written out), the op, and its reference; set finite_differences = false
// only where the inputs are too large for it.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>

#include "op_table.h"

namespace minivlm {
namespace {

using testing::In;
using testing::OpCase;
using Vals = std::vector<double>;
using Coord = std::vector<int64_t>;

// ---- float64 references: plain loops over row-major values ----

Vals vals(const Tensor& t) { return t.to_double_vector(); }
Tensor f64(const Vals& v, const Shape& s) { return Tensor::from_vector(v, s, DType::f64); }

// Calls fn with every coordinate of shape s in row-major order.
void for_each_coord(const Shape& s, const std::function<void(const Coord&)>& fn) {
  Coord c(s.size(), 0);
  for (int64_t k = 0; k < shape_numel(s); ++k) {
    fn(c);
    for (size_t d = s.size(); d-- > 0 && ++c[d] == s[d];) c[d] = 0;
  }
}

// The row-major index, in a tensor of shape s, of the element that numpy broadcasting pairs with
// coordinate c of the output: s is aligned with c's last dimensions and its size-1 dimensions
// repeat. Without broadcasting, the plain row-major index of c.
int64_t index_of(const Shape& s, const Coord& c) {
  const size_t lead = c.size() - s.size();
  int64_t idx = 0;
  for (size_t i = 0; i < s.size(); ++i) idx = idx * s[i] + (s[i] == 1 ? 0 : c[lead + i]);
  return idx;
}

Shape broadcast_shape(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape s(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    s[i] = std::max(da, db);
  }
  return s;
}

// out[c] = x[src(c)] for every coordinate c of `shape`: views, broadcasts and shuffles.
Tensor ref_pick(const Tensor& x, const Shape& shape,
                const std::function<Coord(const Coord&)>& src) {
  const Vals xv = vals(x);
  Vals out;
  for_each_coord(shape, [&](const Coord& c) { out.push_back(xv[index_of(x.shape(), src(c))]); });
  return f64(out, shape);
}

Tensor ref_broadcast(const Tensor& x, const Shape& shape) {
  return ref_pick(x, shape, [](const Coord& c) { return c; });
}

// x with its dimensions in the order perm (out dimension i is x's dimension perm[i]).
Tensor ref_permute(const Tensor& x, const Coord& perm) {
  Shape s;
  for (int64_t p : perm) s.push_back(x.shape()[p]);
  return ref_pick(x, s, [&](const Coord& c) {
    Coord xc(c.size());
    for (size_t i = 0; i < perm.size(); ++i) xc[perm[i]] = c[i];
    return xc;
  });
}

Tensor ref_map(const Tensor& x, const std::function<double(double)>& fn) {
  Vals v = vals(x);
  for (double& e : v) e = fn(e);
  return f64(v, x.shape());
}

Tensor ref_binary(const Tensor& a, const Tensor& b,
                  const std::function<double(double, double)>& fn) {
  const Shape s = broadcast_shape(a.shape(), b.shape());
  const Vals av = vals(a), bv = vals(b);
  Vals out;
  for_each_coord(s, [&](const Coord& c) {
    out.push_back(fn(av[index_of(a.shape(), c)], bv[index_of(b.shape(), c)]));
  });
  return f64(out, s);
}

// k · the sum of x's elements into `shape`: x's dimensions that are 1 (or missing) in `shape`
// collect.
Tensor ref_sum_into(const Tensor& x, const Shape& shape, double k = 1.0) {
  const Vals xv = vals(x);
  Vals out(static_cast<size_t>(shape_numel(shape)), 0.0);
  size_t i = 0;
  for_each_coord(x.shape(), [&](const Coord& c) { out[index_of(shape, c)] += k * xv[i++]; });
  return f64(out, shape);
}

constexpr int64_t kAll = INT64_MAX;  // a reduction over every element

// The sum (or mean) of x over dimension dim, or over everything for kAll.
Tensor ref_reduce(const Tensor& x, int64_t dim, bool keepdim, bool mean) {
  if (dim == kAll) return ref_sum_into(x, {}, mean ? 1.0 / static_cast<double>(x.numel()) : 1.0);
  const size_t d = static_cast<size_t>(dim < 0 ? dim + x.dim() : dim);
  Shape kept = x.shape(), dropped = x.shape();
  kept[d] = 1;
  dropped.erase(dropped.begin() + static_cast<ptrdiff_t>(d));
  const Tensor r = ref_sum_into(x, kept, mean ? 1.0 / static_cast<double>(x.shape()[d]) : 1.0);
  return keepdim ? r : f64(vals(r), dropped);
}

// a [..., M, K] @ b [..., K, N], batch dimensions broadcast; ta / tb: that operand is stored
// transposed ([..., K, M] / [..., N, K]).
Tensor ref_matmul(const Tensor& a, const Tensor& b, bool ta = false, bool tb = false) {
  const Shape &as = a.shape(), &bs = b.shape();
  const int64_t r = static_cast<int64_t>(as.size()), rb = static_cast<int64_t>(bs.size());
  const int64_t M = as[r - (ta ? 1 : 2)], K = as[r - (ta ? 2 : 1)], N = bs[rb - (tb ? 2 : 1)];
  const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  Shape s = broadcast_shape(a_batch, b_batch);
  const Vals av = vals(a), bv = vals(b);
  Vals out;
  for_each_coord(s, [&](const Coord& c) {
    const double* pa = av.data() + index_of(a_batch, c) * M * K;
    const double* pb = bv.data() + index_of(b_batch, c) * K * N;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += (ta ? pa[k * M + i] : pa[i * K + k]) * (tb ? pb[j * K + k] : pb[k * N + j]);
        out.push_back(acc);
      }
  });
  s.push_back(M);
  s.push_back(N);
  return f64(out, s);
}

// x [..., K] · wᵀ (w [N, K]) + bias [N] (where given)
Tensor ref_linear(const In& x) {
  const int64_t K = x[0].shape().back(), N = x[1].shape()[0], rows = x[0].numel() / K;
  const Vals xv = vals(x[0]), wv = vals(x[1]), bv = x.size() > 2 ? vals(x[2]) : Vals(N, 0.0);
  Vals out;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < N; ++o) {
      double s = bv[o];
      for (int64_t i = 0; i < K; ++i) s += xv[r * K + i] * wv[o * K + i];
      out.push_back(s);
    }
  Shape s = x[0].shape();
  s.back() = N;
  return f64(out, s);
}

double silu(double v) { return v / (1 + std::exp(-v)); }
double gelu(double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }
double quick_gelu(double v) { return v / (1 + std::exp(-1.702 * v)); }
// PyTorch's gelu(approximate='tanh')
double gelu_tanh(double v) {
  return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
}

Tensor ref_softmax(const Tensor& x) {
  const size_t n = static_cast<size_t>(x.shape().back());
  Vals v = vals(x);
  for (size_t r = 0; r < v.size(); r += n) {
    double mx = -INFINITY, s = 0;
    for (size_t i = r; i < r + n; ++i) mx = std::max(mx, v[i]);
    for (size_t i = r; i < r + n; ++i) s += std::exp(v[i] - mx);
    for (size_t i = r; i < r + n; ++i) v[i] = std::exp(v[i] - mx) / s;
  }
  return f64(v, x.shape());
}

// RMSNorm w·x / √(mean(x²) + ε), or with `bias` LayerNorm w·(x − μ) / √(var(x) + ε) + bias.
Tensor ref_norm(const Tensor& x, const Tensor& w, const Tensor& bias, double eps) {
  const size_t n = static_cast<size_t>(x.shape().back());
  const Vals xv = vals(x), wv = vals(w);
  Vals out(xv.size());
  for (size_t r = 0; r < xv.size(); r += n) {
    double mu = 0, ss = 0;
    if (bias.defined()) {
      for (size_t i = 0; i < n; ++i) mu += xv[r + i];
      mu /= static_cast<double>(n);
    }
    for (size_t i = 0; i < n; ++i) ss += (xv[r + i] - mu) * (xv[r + i] - mu);
    const double rstd = 1 / std::sqrt(ss / static_cast<double>(n) + eps);
    for (size_t i = 0; i < n; ++i) out[r + i] = wv[i] * (xv[r + i] - mu) * rstd;
  }
  if (!bias.defined()) return f64(out, x.shape());
  return ref_binary(f64(out, x.shape()), bias, [](double a, double b) { return a + b; });
}

// Half-split rotary embedding of x [B, T, nh, hd] with token (b, t) at position pos[b·T + t]: the
// pair (x_i, x_{i+hd/2}) turns by pos · θ^(−2i/hd).
Tensor ref_rope_at(const Tensor& x, double theta, const std::vector<int64_t>& pos) {
  const int64_t T = x.shape()[1], nh = x.shape()[2], hd = x.shape()[3], B = x.shape()[0];
  const Vals xv = vals(x);
  Vals out(xv.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < nh; ++h)
        for (int64_t i = 0; i < hd / 2; ++i) {
          const double ang =
              static_cast<double>(pos[static_cast<size_t>(b * T + t)]) *
              std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
          const size_t base = static_cast<size_t>(((b * T + t) * nh + h) * hd);
          const double a = xv[base + i], c = xv[base + i + hd / 2];
          out[base + i] = a * std::cos(ang) - c * std::sin(ang);
          out[base + i + hd / 2] = c * std::cos(ang) + a * std::sin(ang);
        }
  return f64(out, x.shape());
}

// ref_rope_at at positions start .. start+T-1 in every row.
Tensor ref_rope(const Tensor& x, double theta, int64_t start) {
  const int64_t B = x.shape()[0], T = x.shape()[1];
  std::vector<int64_t> pos(static_cast<size_t>(B * T));
  for (int64_t i = 0; i < B * T; ++i) pos[static_cast<size_t>(i)] = start + i % T;
  return ref_rope_at(x, theta, pos);
}

// Packed rows: dense attention of q, k, v [B, T, heads, hd] under an explicit [T, T] mask per
// row, built here from the samples' lengths: query i and key j are visible to each other when
// j ≤ i and both lie in the same sample (the tokens after the last sample form one more).
Tensor ref_packed_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                            const std::vector<std::vector<int64_t>>& lengths) {
  const int64_t B = q.shape()[0], T = q.shape()[1], nq = q.shape()[2], hd = q.shape()[3];
  const int64_t nkv = k.shape()[2];
  const Vals qv = vals(q), kv = vals(k), vv = vals(v);
  Vals out(qv.size(), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> sample(static_cast<size_t>(T));  // sample number of each token
    int64_t t = 0, n = 0;
    for (int64_t len : lengths[static_cast<size_t>(b)]) {
      for (int64_t e = 0; e < len; ++e) sample[static_cast<size_t>(t++)] = n;
      ++n;
    }
    for (; t < T; ++t) sample[static_cast<size_t>(t)] = n;
    for (int64_t h = 0; h < nq; ++h) {
      const int64_t kh = h / (nq / nkv);
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> w(static_cast<size_t>(T), 0.0);
        double mx = -INFINITY, z = 0;
        for (int64_t j = 0; j <= i; ++j) {
          if (sample[static_cast<size_t>(j)] != sample[static_cast<size_t>(i)]) continue;
          double d = 0;
          for (int64_t c = 0; c < hd; ++c)
            d += qv[((b * T + i) * nq + h) * hd + c] * kv[((b * T + j) * nkv + kh) * hd + c];
          w[static_cast<size_t>(j)] = d * scale;
          mx = std::max(mx, d * scale);
        }
        for (int64_t j = 0; j <= i; ++j)
          if (sample[static_cast<size_t>(j)] == sample[static_cast<size_t>(i)])
            z += std::exp(w[static_cast<size_t>(j)] - mx);
        for (int64_t j = 0; j <= i; ++j) {
          if (sample[static_cast<size_t>(j)] != sample[static_cast<size_t>(i)]) continue;
          const double p = std::exp(w[static_cast<size_t>(j)] - mx) / z;
          for (int64_t c = 0; c < hd; ++c)
            out[((b * T + i) * nq + h) * hd + c] += p * vv[((b * T + j) * nkv + kh) * hd + c];
        }
      }
    }
  }
  return f64(out, q.shape());
}

// softmax(q·kᵀ/√hd) v per head; query head h reads kv head h / (nq / nkv); causal: query i sees
// keys j ≤ i + (Tk − Tq).
Tensor ref_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const int64_t B = q.shape()[0], Tq = q.shape()[1], nq = q.shape()[2], hd = q.shape()[3];
  const int64_t Tk = k.shape()[1], nkv = k.shape()[2];
  const Vals qv = vals(q), kv = vals(k), vv = vals(v);
  Vals out(qv.size(), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < nq; ++h) {
      const int64_t kh = h / (nq / nkv);
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t seen = causal ? std::min(Tk, i + (Tk - Tq) + 1) : Tk;
        Vals s(static_cast<size_t>(seen));
        double mx = -INFINITY, z = 0;
        for (int64_t j = 0; j < seen; ++j) {
          double d = 0;
          for (int64_t c = 0; c < hd; ++c)
            d += qv[((b * Tq + i) * nq + h) * hd + c] * kv[((b * Tk + j) * nkv + kh) * hd + c];
          s[j] = d * scale;
          mx = std::max(mx, s[j]);
        }
        for (int64_t j = 0; j < seen; ++j) z += std::exp(s[j] - mx);
        for (int64_t j = 0; j < seen; ++j)
          for (int64_t c = 0; c < hd; ++c)
            out[((b * Tq + i) * nq + h) * hd + c] +=
                std::exp(s[j] - mx) / z * vv[((b * Tk + j) * nkv + kh) * hd + c];
      }
    }
  return f64(out, q.shape());
}

// The summed −log softmax(logits)[target] over rows whose target is not ignored, divided by the
// denominator where > 0, else by the count of such rows (0 when there is none).
Tensor ref_cross_entropy(const Tensor& logits, const Tensor& targets, double denominator) {
  const int64_t N = logits.shape()[0], V = logits.shape()[1];
  const Vals lv = vals(logits), tv = vals(targets);
  double total = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (tv[i] == ops::kIgnoreIndex) continue;
    double mx = -INFINITY, s = 0;
    for (int64_t j = 0; j < V; ++j) mx = std::max(mx, lv[i * V + j]);
    for (int64_t j = 0; j < V; ++j) s += std::exp(lv[i * V + j] - mx);
    total += mx + std::log(s) - lv[i * V + static_cast<int64_t>(tv[i])];
    ++count;
  }
  const double div = denominator > 0 ? denominator : static_cast<double>(count);
  return f64({count == 0 && denominator <= 0 ? 0.0 : total / div}, {});
}

// Rows of x [N, H] at ids [...] → [..., H]
Tensor ref_rows(const Tensor& x, const Tensor& ids) {
  Shape s = ids.shape();
  s.push_back(x.shape()[1]);
  const Vals iv = vals(ids);
  return ref_pick(x, s, [&](const Coord& c) {
    return Coord{static_cast<int64_t>(iv[index_of(ids.shape(), Coord(c.begin(), c.end() - 1))]),
                 c.back()};
  });
}

// base [N, H] with rows[m] replaced by src[m]
Tensor ref_scatter_rows(const Tensor& base, const Tensor& rows, const Tensor& src) {
  Vals out = vals(base);
  const Vals rv = vals(rows), sv = vals(src);
  const size_t H = static_cast<size_t>(base.shape()[1]);
  for (size_t m = 0; m < rv.size(); ++m)
    for (size_t c = 0; c < H; ++c) out[static_cast<size_t>(rv[m]) * H + c] = sv[m * H + c];
  return f64(out, base.shape());
}

// base [N, H] with src[m] added to row rows[m], m in order
Tensor ref_index_add_rows(const Tensor& base, const Tensor& rows, const Tensor& src) {
  Vals out = vals(base);
  const Vals rv = vals(rows), sv = vals(src);
  const size_t H = static_cast<size_t>(base.shape()[1]);
  for (size_t m = 0; m < rv.size(); ++m)
    for (size_t c = 0; c < H; ++c) out[static_cast<size_t>(rv[m]) * H + c] += sv[m * H + c];
  return f64(out, base.shape());
}

Tensor ref_concat(const In& xs, int64_t dim) {
  Shape s = xs[0].shape();
  s[dim] = 0;
  std::vector<Vals> xv;
  for (const Tensor& x : xs) {
    s[dim] += x.shape()[dim];
    xv.push_back(vals(x));
  }
  Vals out;
  for_each_coord(s, [&](const Coord& c) {
    Coord xc = c;
    size_t k = 0;
    while (xc[dim] >= xs[k].shape()[dim]) xc[dim] -= xs[k++].shape()[dim];
    out.push_back(xv[k][index_of(xs[k].shape(), xc)]);
  });
  return f64(out, s);
}

// A convolution with stride = kernel = p: pixels [B, C, H, W], weight [D, C, p, p], bias [D]
// (where given) → [B, (H/p)·(W/p), D], the grid row-major.
Tensor ref_patch_embed(const In& x) {
  const int64_t B = x[0].shape()[0], C = x[0].shape()[1], H = x[0].shape()[2], W = x[0].shape()[3],
                D = x[1].shape()[0], p = x[1].shape()[2];
  const Vals pv = vals(x[0]), wv = vals(x[1]), bv = x.size() > 2 ? vals(x[2]) : Vals(D, 0.0);
  Vals out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t gy = 0; gy < H / p; ++gy)
      for (int64_t gx = 0; gx < W / p; ++gx)
        for (int64_t d = 0; d < D; ++d) {
          double s = bv[d];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t ky = 0; ky < p; ++ky)
              for (int64_t kx = 0; kx < p; ++kx)
                s += wv[((d * C + c) * p + ky) * p + kx] *
                     pv[((b * C + c) * H + gy * p + ky) * W + gx * p + kx];
          out.push_back(s);
        }
  return f64(out, {B, (H / p) * (W / p), D});
}

// SPEC §1.4: x [..., S, D], S = G² → [..., S/r², D·r²]; output row i = (h2, w2) on the G/r grid,
// column m = (dr, dc, d) reads x[(h2·r + dr)·G + w2·r + dc, d].
Tensor ref_pixel_shuffle(const Tensor& x, int64_t r) {
  const int64_t rank = x.dim(), S = x.shape()[rank - 2], D = x.shape()[rank - 1];
  const int64_t G = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(S)))),
                Gr = G / r;
  Shape s = x.shape();
  s[rank - 2] = S / (r * r);
  s[rank - 1] = D * r * r;
  return ref_pick(x, s, [&](const Coord& c) {
    const int64_t i = c[rank - 2], m = c[rank - 1];
    const int64_t h2 = i / Gr, w2 = i % Gr, dr = m / (r * D), dc = (m % (r * D)) / D, d = m % D;
    Coord xc = c;
    xc[rank - 2] = (h2 * r + dr) * G + (w2 * r + dc);
    xc[rank - 1] = d;
    return xc;
  });
}

// ---- the table ----

std::string dims(const Shape& s) {
  std::string out;
  for (int64_t d : s) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

std::string at(const Tensor& ids) {
  std::string out = "at";
  for (int64_t i : ids.to_int_vector()) out += "_" + std::to_string(i);
  return out;
}

Tensor index_tensor(const std::vector<int64_t>& v, const Shape& s) {
  return Tensor::from_vector(v, s);
}

std::vector<OpCase> build_table() {
  std::vector<OpCase> t;
  Rng rng(1);
  const auto normal = [&rng](const Shape& s, double std = 1.0) {
    return testing::randn(rng, s, DType::f64, std);
  };

  // ---- element-wise: broadcasting both ways, equal shapes, a bias add wider than one chunk (300
  // columns), a one-element operand, and more rows than one chunk (300) ----
  struct Binary {
    const char* name;
    Tensor (*op)(const Tensor&, const Tensor&);
    double (*math)(double, double);
  };
  const Binary add{"add", ops::add, [](double x, double y) { return x + y; }};
  const Binary sub{"sub", ops::sub, [](double x, double y) { return x - y; }};
  const Binary mul{"mul", ops::mul, [](double x, double y) { return x * y; }};
  for (const auto& [b, sa, sb] :
       std::vector<std::tuple<Binary, Shape, Shape>>{{add, {4, 1, 7}, {5, 1}},
                                                     {sub, {4, 1, 7}, {5, 1}},
                                                     {mul, {4, 1, 7}, {5, 1}},
                                                     {sub, {7}, {2, 7}},
                                                     {mul, {3, 4, 5}, {3, 4, 5}},
                                                     {add, {3, 2, 300}, {300}},
                                                     {add, {3, 2, 300}, {1}},
                                                     {add, {2, 300, 7}, {7}}})
    t.push_back({.name = std::string(b.name) + "_" + dims(sa) + "_" + dims(sb),
                 .inputs = {normal(sa), normal(sb)},
                 .op = [op = b.op](const In& x) { return op(x[0], x[1]); },
                 .reference = [math = b.math](const In& x) { return ref_binary(x[0], x[1], math); },
                 .rtol = 1e-6,
                 .atol = 1e-6});
  t.push_back(
      {.name = "scale_4x1x7",
       .inputs = {normal({4, 1, 7})},
       .op = [](const In& x) { return ops::scale(x[0], -2.5); },
       .reference = [](const In& x) { return ref_map(x[0], [](double v) { return -2.5 * v; }); },
       .rtol = 1e-6,
       .atol = 1e-6});
  t.push_back({.name = "expand_3x1_to_2x3x4",
               .inputs = {normal({3, 1})},
               .op =
                   [](const In& x) {
                     return ops::expand(x[0], {2, 3, 4});
                   },
               .reference =
                   [](const In& x) {
                     return ref_broadcast(x[0], {2, 3, 4});
                   }});
  t.push_back({.name = "reduce_to_shape_2x3x4_to_3x1",
               .inputs = {normal({2, 3, 4})},
               .op =
                   [](const In& x) {
                     return ops::reduce_to_shape(x[0], {3, 1});
                   },
               .reference =
                   [](const In& x) {
                     return ref_sum_into(x[0], {3, 1});
                   }});

  // ---- sum and mean: over everything, over one dimension (also from the end), keeping it ----
  struct Reduction {
    std::string name;
    Shape shape;
    int64_t dim;
    bool keepdim, mean;
  };
  for (const Reduction& r :
       std::vector<Reduction>{{"sum_4x1x7", {4, 1, 7}, kAll, false, false},
                              {"sum_4x1x7_last", {4, 1, 7}, -1, false, false},
                              {"sum_3x7x2_dim1", {3, 7, 2}, 1, false, false},
                              {"mean_4x1x7", {4, 1, 7}, kAll, false, true},
                              {"mean_1", {1}, kAll, false, true},
                              {"mean_4x1x7_dim0_keepdim", {4, 1, 7}, 0, true, true}})
    t.push_back(
        {.name = r.name,
         .inputs = {normal(r.shape)},
         .op =
             [r](const In& x) {
               if (r.dim == kAll) return r.mean ? ops::mean(x[0]) : ops::sum(x[0]);
               return r.mean ? ops::mean(x[0], r.dim, r.keepdim) : ops::sum(x[0], r.dim, r.keepdim);
             },
         .reference = [r](const In& x) { return ref_reduce(x[0], r.dim, r.keepdim, r.mean); },
         .rtol = 1e-6,
         .atol = r.dim == kAll && !r.mean ? 1e-5 : 1e-6});

  // ---- matmul: tails of 1/7/65, operands stored transposed (views: the GEMM's transpose
  // flags), batched and broadcast batch dimensions; linear with and without a bias ----
  struct Matmul {
    int64_t m, k, n;
    bool a_transposed = false, b_transposed = false;
  };
  for (const Matmul& mm : std::vector<Matmul>{{1, 1, 1},
                                              {7, 65, 3},
                                              {65, 7, 65},
                                              {7, 3, 5},
                                              {2, 65, 1},
                                              {1, 1, 1, false, true},
                                              {7, 65, 3, false, true},
                                              {65, 7, 65, false, true},
                                              {7, 65, 3, true, false}}) {
    const auto [m, k, n, ta, tb] = mm;
    t.push_back({.name = "matmul_" + dims({2, m, k}) + "_" + dims({k, n}) + (ta ? "_aT" : "") +
                         (tb ? "_bT" : ""),
                 .inputs = {normal(ta ? Shape{2, k, m} : Shape{2, m, k}),
                            normal(tb ? Shape{n, k} : Shape{k, n})},
                 .op =
                     [ta, tb](const In& x) {
                       return ops::matmul(ta ? x[0].transpose(1, 2) : x[0],
                                          tb ? x[1].transpose(0, 1) : x[1]);
                     },
                 .reference = [ta, tb](const In& x) { return ref_matmul(x[0], x[1], ta, tb); },
                 // Rounding in the sum of 8450 outputs drowns a 65×65 product's central
                 // differences.
                 .finite_differences = m * n < 65 * 65});
  }
  for (const auto& [sa, sb] :
       std::vector<std::pair<Shape, Shape>>{{{2, 3, 4}, {2, 4, 5}}, {{3, 1, 2, 4}, {2, 4, 3}}})
    t.push_back({.name = "matmul_" + dims(sa) + "_" + dims(sb),
                 .inputs = {normal(sa), normal(sb)},
                 .op = [](const In& x) { return ops::matmul(x[0], x[1]); },
                 .reference = [](const In& x) { return ref_matmul(x[0], x[1]); }});
  for (const auto& [sx, n, bias] :
       std::vector<std::tuple<Shape, int64_t, bool>>{{{3, 5, 7}, 65, true},
                                                     {{1, 1}, 1, true},
                                                     {{7, 3}, 5, true},
                                                     {{2, 65}, 1, true},
                                                     {{7, 3}, 5, false}}) {
    In inputs = {normal(sx), normal({n, sx.back()})};
    if (bias) inputs.push_back(normal({n}));
    t.push_back(
        {.name = "linear_" + dims(sx) + "_" + std::to_string(n) + (bias ? "" : "_nobias"),
         .inputs = inputs,
         .op = [](const In& x) { return ops::linear(x[0], x[1], x.size() > 2 ? x[2] : Tensor()); },
         .reference = ref_linear});
  }

  // ---- activations and softmax over tails of 1/7/65, wide inputs reaching the flat parts ----
  struct Unary {
    const char* name;
    Tensor (*op)(const Tensor&);
    double (*math)(double);
  };
  for (int64_t n : {1, 7, 65}) {
    const Shape s{3, n};
    for (const Unary& u : {Unary{"silu", ops::silu, silu}, Unary{"gelu", ops::gelu, gelu},
                           Unary{"gelu_tanh", ops::gelu_tanh, gelu_tanh},
                           Unary{"quick_gelu", ops::quick_gelu, quick_gelu}})
      t.push_back({.name = std::string(u.name) + "_" + dims(s),
                   .inputs = {normal(s, 3.0)},
                   .op = [op = u.op](const In& x) { return op(x[0]); },
                   .reference = [math = u.math](const In& x) { return ref_map(x[0], math); },
                   .rtol = 1e-5,
                   .atol = 1e-6});
    t.push_back({.name = "swiglu_" + dims(s),
                 .inputs = {normal(s, 3.0), normal(s)},
                 .op = [](const In& x) { return ops::swiglu(x[0], x[1]); },
                 .reference =
                     [](const In& x) {
                       return ref_binary(x[0], x[1],
                                         [](double g, double u) { return silu(g) * u; });
                     },
                 .rtol = 1e-5,
                 .atol = 1e-6});
    t.push_back({.name = "softmax_" + dims(s),
                 .inputs = {normal(s, 4.0)},
                 .op = [](const In& x) { return ops::softmax(x[0]); },
                 .reference = [](const In& x) { return ref_softmax(x[0]); },
                 .rtol = 1e-5,
                 .atol = 1e-7});
  }

  // ---- norms over tails of 1/7/65 ----
  for (int64_t n : {1, 7, 65}) {
    t.push_back({.name = "rmsnorm_" + std::to_string(n),
                 .inputs = {normal({2, 3, n}, 2.0), normal({n})},
                 .op = [](const In& x) { return ops::rmsnorm(x[0], x[1], 1e-5); },
                 .reference = [](const In& x) { return ref_norm(x[0], x[1], Tensor(), 1e-5); },
                 // One element: x/√(x² + ε) is flat, its gradient ε/(x² + ε)^1.5 is ~1e-5 and
                 // rounding f32's rstd moves it by ~1e-7.
                 .f32_atol = n == 1 ? 1e-6 : 0.0});
    t.push_back({.name = "layernorm_" + std::to_string(n),
                 .inputs = {normal({2, 3, n}, 2.0), normal({n}), normal({n})},
                 .op = [](const In& x) { return ops::layernorm(x[0], x[1], x[2], 1e-5); },
                 .reference = [](const In& x) { return ref_norm(x[0], x[1], x[2], 1e-5); },
                 .rtol = 1e-4,
                 .atol = 1e-5,
                 // LayerNorm of one element is constant: its gradient is 0 and ill-conditioned.
                 .finite_differences = n > 1});
  }

  // ---- rope, from position 0 and further on ----
  for (const auto& [s, start] :
       std::vector<std::pair<Shape, int64_t>>{{{2, 7, 3, 8}, 0}, {{2, 7, 3, 8}, 5}})
    t.push_back({.name = "rope_" + dims(s) + "_from" + std::to_string(start),
                 .inputs = {normal(s)},
                 .op = [start](const In& x) { return ops::rope(x[0], 10000.0, start); },
                 .reference = [start](const In& x) { return ref_rope(x[0], 10000.0, start); }});

  // ---- rope at per-token positions (packed rows restart at 0 per sample) ----
  {
    const std::vector<int64_t> pos = {0, 1, 2, 0, 1, 0, 1, 5, 6, 0, 1, 2, 3, 9};
    t.push_back({.name = "rope_at_positions_2x7x3x8",
                 .inputs = {normal({2, 7, 3, 8}), index_tensor(pos, {2, 7})},
                 .op = [](const In& x) { return ops::rope_at(x[0], 10000.0, x[1]); },
                 .reference = [pos](const In& x) { return ref_rope_at(x[0], 10000.0, pos); }});
  }

  // ---- packed attention: rows of several samples, each seeing only itself (causal) ----
  // Sample lengths per row; the rest of the row is padding. Boundaries fall inside and on the
  // 32-row tiles of the CUDA kernels and the 64-row blocks of the CPU's.
  const auto packed_attention = [&](const std::string& name,
                                    const std::vector<std::vector<int64_t>>& lengths, int64_t T,
                                    int64_t nkv, int64_t group, int64_t hd, bool fd) {
    const auto B = static_cast<int64_t>(lengths.size());
    std::vector<int64_t> starts;
    for (const std::vector<int64_t>& row : lengths) {
      int64_t at = 0;
      for (int64_t len : row) {
        starts.insert(starts.end(), static_cast<size_t>(len), at);
        at += len;
      }
      starts.insert(starts.end(), static_cast<size_t>(T - at), at);
    }
    t.push_back(
        {.name =
             "attention_packed_" + name + "_g" + std::to_string(group) + "_d" + std::to_string(hd),
         .inputs = {normal({B, T, nkv * group, hd}), normal({B, T, nkv, hd}),
                    normal({B, T, nkv, hd}), index_tensor(starts, {B, T})},
         .op = [](const In& x) { return ops::attention(x[0], x[1], x[2], true, x[3]); },
         .reference =
             [lengths](const In& x) { return ref_packed_attention(x[0], x[1], x[2], lengths); },
         .rtol = 1e-4,
         .atol = 1e-5,
         .finite_differences = fd,
         // Samples of one token: their softmax is constant, dq and dk are rounding.
         .f32_atol = 1e-6});
  };
  packed_attention("t9", {{3, 1, 4}, {9}}, 9, 2, 2, 8, true);
  packed_attention("t9_pad", {{2, 5}, {1, 1, 1}}, 9, 1, 2, 8, true);
  for (int64_t group : {1, 4})
    packed_attention("t130", {{20, 45, 30, 35}, {64, 66}}, 130, 2, group, 16, false);
  packed_attention("t100_pad", {{31, 33, 1, 10}, {5, 90}}, 100, 1, 2, 32, false);

  // ---- attention: q [B, Tq, nkv·group, hd], k and v [B, Tk, nkv, hd] ----
  const auto attention = [&](int64_t B, int64_t Tq, int64_t Tk, int64_t nkv, int64_t group,
                             int64_t hd, bool causal, bool finite_differences) {
    const std::string T = Tq == Tk ? "t" + std::to_string(Tq)
                                   : "tq" + std::to_string(Tq) + "_tk" + std::to_string(Tk);
    t.push_back(
        {.name = "attention_" + T + "_g" + std::to_string(group) + "_d" + std::to_string(hd) +
                 (causal ? "_causal" : "_bidir"),
         .inputs = {normal({B, Tq, nkv * group, hd}), normal({B, Tk, nkv, hd}),
                    normal({B, Tk, nkv, hd})},
         .op = [causal](const In& x) { return ops::attention(x[0], x[1], x[2], causal); },
         .reference = [causal](const In& x) { return ref_attention(x[0], x[1], x[2], causal); },
         .rtol = 1e-4,
         .atol = 1e-5,
         .finite_differences = finite_differences,
         // One key: the softmax is constant, dq and dk are 0 up to rounding.
         .f32_atol = Tk == 1 ? 1e-5 : 0.0,
         .bf16_atol = Tk == 1 ? 1e-5 : 0.0});
  };
  // GQA groups 1/2/4, causal and bidirectional, over lengths 1/7/65/130 (65 and 130 span three
  // and five 32-row tiles); finite differences where the shape is small.
  for (int64_t T : {1, 7, 65, 130})
    for (int64_t group : {1, 2, 4})
      for (bool causal : {true, false}) attention(2, T, T, 2, group, 16, causal, T <= 7);
  for (bool causal : {true, false}) attention(1, 65, 65, 1, 2, 8, causal, true);
  // Fewer queries than keys (decoding with a cache): query i sees keys up to i + Tk − Tq.
  attention(1, 3, 9, 2, 2, 8, true, true);
  attention(1, 2, 6, 1, 2, 8, true, true);
  // One query (a decode step) against 300 keys: three chunks of the key-split kernel.
  for (bool causal : {true, false}) attention(2, 1, 300, 2, 2, 32, causal, false);

  // ---- cross-entropy: partly, fully and not masked, over the local count or a denominator ----
  for (const auto& [V, kind, targets] : std::vector<std::tuple<int64_t, std::string, Tensor>>{
           {65, "partial", index_tensor({3, -100, 64, 0, -100, 17, 5}, {7})},
           {65, "masked", index_tensor(std::vector<int64_t>(7, -100), {7})},
           {65, "unmasked", index_tensor({1, 2, 3, 4, 5, 6, 7}, {7})},
           {9, "partial", index_tensor({2, -100, 8, 0, -100, 5}, {6})}})
    for (double denominator : {0.0, V == 65 ? 11.0 : 10.0})
      t.push_back(
          {.name = "cross_entropy_" + dims({targets.numel(), V}) + "_" + kind +
                   (denominator > 0 ? "_over" + std::to_string(static_cast<int>(denominator)) : ""),
           .inputs = {normal({targets.numel(), V}, 3.0), targets},
           .op =
               [denominator](const In& x) {
                 return ops::cross_entropy(x[0], x[1], ops::kIgnoreIndex, denominator);
               },
           .reference =
               [denominator](const In& x) { return ref_cross_entropy(x[0], x[1], denominator); },
           .rtol = 0,
           .atol = 1e-5});

  // ---- rows: repeated ids (the backward accumulates), the first and the last row ----
  struct Rows {
    const char* name;
    Tensor (*op)(const Tensor&, const Tensor&);
    Shape table;
    Tensor ids;
  };
  for (const Rows& r : std::vector<Rows>{
           {"embedding", ops::embedding, {7, 5}, index_tensor({6, 0, 3, 3}, {2, 2})},
           {"embedding", ops::embedding, {5, 3}, index_tensor({4, 0, 4, 2, 4}, {5})},
           {"embedding", ops::embedding, {11, 6}, index_tensor({3, 0, 10, 3, 3, 7}, {2, 3})},
           {"embedding",
            ops::embedding,
            {11, 6},
            Tensor::from_vector(std::vector<int32_t>{3, 0, 10, 3, 3, 7}, {2, 3})},
           {"gather_rows", ops::gather_rows, {7, 5}, index_tensor({6, 0, 3, 3}, {4})},
           {"gather_rows", ops::gather_rows, {5, 3}, index_tensor({4, 0, 4, 2, 4}, {5})}})
    t.push_back({.name = std::string(r.name) + "_" + dims(r.table) + "_" + at(r.ids) +
                         (r.ids.dtype() == DType::i32 ? "_i32" : ""),
                 .inputs = {normal(r.table), r.ids},
                 .op = [op = r.op](const In& x) { return op(x[0], x[1]); },
                 .reference = [](const In& x) { return ref_rows(x[0], x[1]); },
                 .rtol = 0,
                 .atol = 0});
  for (const auto& [base, rows] : std::vector<std::pair<Shape, Tensor>>{
           {{5, 3}, index_tensor({3, 0}, {2})}, {{7, 5}, index_tensor({5, 1, 2}, {3})}})
    t.push_back({.name = "scatter_rows_" + dims(base) + "_" + at(rows),
                 .inputs = {normal(base), rows, normal({rows.numel(), base[1]})},
                 .op = [](const In& x) { return ops::scatter_rows(x[0], x[1], x[2]); },
                 .reference = [](const In& x) { return ref_scatter_rows(x[0], x[1], x[2]); },
                 .rtol = 0,
                 .atol = 0});
  // index_add_rows: repeated rows (summed in order), the first and the last row, i32 and i64.
  for (const auto& [base, rows] : std::vector<std::pair<Shape, Tensor>>{
           {{5, 3}, index_tensor({3, 0, 3}, {3})},
           {{7, 5}, index_tensor({6, 0, 6, 2, 6}, {5})},
           {{7, 5}, Tensor::from_vector(std::vector<int32_t>{6, 0, 6, 2, 6}, {5})},
           {{4, 6}, index_tensor({1}, {1})}})
    t.push_back({.name = "index_add_rows_" + dims(base) + "_" + at(rows) +
                         (rows.dtype() == DType::i32 ? "_i32" : ""),
                 .inputs = {normal(base), rows, normal({rows.numel(), base[1]})},
                 .op = [](const In& x) { return ops::index_add_rows(x[0], x[1], x[2]); },
                 .reference = [](const In& x) { return ref_index_add_rows(x[0], x[1], x[2]); }});
  // concat: `order` lists which input goes where (an input may appear twice).
  for (const auto& [name, shapes, order, dim] :
       std::vector<std::tuple<std::string, std::vector<Shape>, std::vector<size_t>, int64_t>>{
           {"concat_2x3_2x1_dim1", {{2, 3}, {2, 1}}, {0, 1}, 1},
           {"concat_2x3_1x3_2x3_same_dim0", {{2, 3}, {1, 3}}, {0, 1, 0}, 0},
           {"concat_2x3x4_2x1x4_dim1", {{2, 3, 4}, {2, 1, 4}}, {0, 1}, 1},
           {"concat_2x3x4_same_dim2", {{2, 3, 4}}, {0, 0}, 2}}) {
    In inputs;
    for (const Shape& s : shapes) inputs.push_back(normal(s));
    const auto in_order = [order](const In& x) {
      In xs;
      for (size_t i : order) xs.push_back(x[i]);
      return xs;
    };
    t.push_back({.name = name,
                 .inputs = inputs,
                 .op = [in_order, dim](const In& x) { return ops::concat(in_order(x), dim); },
                 .reference = [in_order, dim](const In& x) { return ref_concat(in_order(x), dim); },
                 .rtol = 0,
                 .atol = 0});
  }

  // ---- vision: patch embedding with and without a bias, pixel shuffle r = 1/2/3/4 ----
  for (const auto& [px, p, D, bias] : std::vector<std::tuple<Shape, int64_t, int64_t, bool>>{
           {{2, 3, 8, 12}, 4, 5, true}, {{1, 2, 4, 6}, 2, 3, true}, {{1, 2, 4, 6}, 2, 3, false}}) {
    In inputs = {normal(px), normal({D, px[1], p, p})};
    if (bias) inputs.push_back(normal({D}));
    t.push_back(
        {.name = "patch_embed_" + dims(px) + "_p" + std::to_string(p) + (bias ? "" : "_nobias"),
         .inputs = inputs,
         .op =
             [](const In& x) {
               return ops::patch_embed(x[0], x[1], x.size() > 2 ? x[2] : Tensor());
             },
         .reference = ref_patch_embed});
  }
  for (const auto& [s, r] : std::vector<std::pair<Shape, int64_t>>{{{2, 64, 3}, 1},
                                                                   {{2, 64, 3}, 2},
                                                                   {{2, 64, 3}, 4},
                                                                   {{16, 3}, 2},
                                                                   {{2, 36, 5}, 2},
                                                                   {{2, 36, 5}, 3}})
    t.push_back({.name = "pixel_shuffle_" + dims(s) + "_r" + std::to_string(r),
                 .inputs = {normal(s)},
                 .op = [r](const In& x) { return ops::pixel_shuffle(x[0], r); },
                 .reference = [r](const In& x) { return ref_pixel_shuffle(x[0], r); },
                 .rtol = 0,
                 .atol = 0});

  // ---- views and their gradients ----
  t.push_back({.name = "view_transpose_reshape_2x3x4",
               .inputs = {normal({2, 3, 4})},
               .op =
                   [](const In& x) {
                     return x[0].transpose(0, 2).reshape({-1, 2});
                   },
               .reference =
                   [](const In& x) {
                     return f64(vals(ref_permute(x[0], {2, 1, 0})), {12, 2});
                   }});
  t.push_back({.name = "view_permute_contiguous_2x3x4",
               .inputs = {normal({2, 3, 4})},
               .op =
                   [](const In& x) {
                     return x[0].permute({2, 0, 1}).contiguous();
                   },
               .reference =
                   [](const In& x) {
                     return ref_permute(x[0], {2, 0, 1});
                   }});
  t.push_back({.name = "view_slice_step2_2x7",
               .inputs = {normal({2, 7})},
               .op = [](const In& x) { return x[0].slice(1, 1, 7, 2); },
               .reference =
                   [](const In& x) {
                     return ref_pick(x[0], {2, 3}, [](const Coord& c) {
                       return Coord{c[0], 1 + 2 * c[1]};
                     });
                   }});
  t.push_back({.name = "view_narrow_select_4x5",
               .inputs = {normal({4, 5})},
               .op = [](const In& x) { return x[0].narrow(0, 1, 2).select(1, 3); },
               .reference =
                   [](const In& x) {
                     return ref_pick(x[0], {2}, [](const Coord& c) { return Coord{1 + c[0], 3}; });
                   }});
  // Through f32 and back: the finite differences see f32 rounding, hence the larger step.
  t.push_back(
      {.name = "view_unsqueeze_squeeze_f32_3",
       .inputs = {normal({3})},
       .op =
           [](const In& x) { return x[0].unsqueeze(1).squeeze(1).to(DType::f32).to(x[0].dtype()); },
       .reference =
           [](const In& x) {
             return ref_map(x[0],
                            [](double v) { return static_cast<double>(static_cast<float>(v)); });
           },
       .gradcheck = {.h = 1e-3, .rtol = 1e-3, .atol = 1e-5}});
  return t;
}

const std::vector<OpCase>& op_table() {
  static const std::vector<OpCase> table = build_table();
  return table;
}

std::vector<size_t> every_case() {
  std::vector<size_t> out(op_table().size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = i;
  return out;
}

class OnCpu : public ::testing::TestWithParam<size_t> {};
TEST_P(OnCpu, MatchesMath) { testing::check_on_cpu(op_table()[GetParam()]); }
INSTANTIATE_TEST_SUITE_P(OpTable, OnCpu, ::testing::ValuesIn(every_case()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return op_table()[info.param].name;
                         });

class OnCpuBf16 : public ::testing::TestWithParam<size_t> {};
TEST_P(OnCpuBf16, MatchesF32) { testing::check_bf16_on_cpu(op_table()[GetParam()]); }
INSTANTIATE_TEST_SUITE_P(OpTable, OnCpuBf16, ::testing::ValuesIn(every_case()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return op_table()[info.param].name;
                         });

class OnDevice : public ::testing::TestWithParam<std::tuple<size_t, Device>> {};
TEST_P(OnDevice, MatchesCpu) {
  testing::check_on_device(op_table()[std::get<0>(GetParam())], std::get<1>(GetParam()));
}
INSTANTIATE_TEST_SUITE_P(OpTable, OnDevice,
                         ::testing::Combine(::testing::ValuesIn(every_case()),
                                            ::testing::ValuesIn(testing::test_devices())),
                         [](const ::testing::TestParamInfo<std::tuple<size_t, Device>>& info) {
                           return op_table()[std::get<0>(info.param)].name + "_" +
                                  testing::param_name(std::get<1>(info.param));
                         });
// With no device under test besides the CPU, the table still runs on the CPU.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OnDevice);

// ---- errors ----

TEST(OpErrors, ShapeErrorsNameBothShapes) {
  try {
    ops::matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4, 5]"), std::string::npos) << e.what();
  }
  try {
    ops::add(Tensor::zeros({2, 3}), Tensor::zeros({4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4]"), std::string::npos) << e.what();
  }
}

TEST(OpErrors, IndexAddRowsNamesBadArguments) {
  const auto expect_error = [](const Tensor& base, const Tensor& idx, const Tensor& src,
                               const std::vector<std::string>& parts) {
    try {
      ops::index_add_rows(base, idx, src);
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      for (const std::string& part : parts)
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  const auto rows = [](const std::vector<int64_t>& v) {
    return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  };
  const Tensor base = Tensor::zeros({4, 3}), src = Tensor::zeros({2, 3}), idx = rows({1, 3});
  expect_error(base, idx, Tensor::zeros({2, 5}), {"index_add_rows: base", "[4, 3]", "[2, 5]"});
  expect_error(Tensor::zeros({4, 3, 1}), idx, src, {"index_add_rows: base", "[4, 3, 1]"});
  expect_error(base, idx, Tensor::zeros({2, 3}, DType::f64),
               {"index_add_rows: dtype mismatch", "f32", "f64"});
  expect_error(base, rows({1, 4}), src, {"index_add_rows: row index 4 outside [0, 4)"});
  expect_error(base, rows({-1, 0}), src, {"index_add_rows: row index -1 outside [0, 4)"});
  expect_error(base, rows({1, 2, 3}), src, {"index_add_rows: 3 indices for 2 source rows"});
  expect_error(base, Tensor::from_vector(std::vector<int64_t>{1, 3}, {1, 2}), src,
               {"index_add_rows: indices must be a 1-D integer tensor", "[1, 2]"});
  expect_error(base, Tensor::zeros({2}), src,
               {"index_add_rows: indices must be an i32 or i64 tensor"});
}

// No rows to add: a copy of base whose gradient passes through, on every back-end.
TEST(OpEdges, IndexAddRowsOfNoRowsCopiesBase) {
  std::vector<Device> devices = testing::test_devices();
  devices.insert(devices.begin(), kCPU);
  for (const Device& d : devices) {
    SCOPED_TRACE(d.str());
    Tensor base = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}).to(d).detach();
    Tensor src = Tensor::zeros({0, 3}).to(d).detach();
    base.set_requires_grad(true);
    src.set_requires_grad(true);
    const Tensor y =
        ops::index_add_rows(base, Tensor::from_vector(std::vector<int64_t>{}, {0}), src);
    EXPECT_EQ(y.to(kCPU).to_double_vector(), (std::vector<double>{1, 2, 3, 4, 5, 6}));
    y.backward(Tensor::ones({2, 3}).to(d));
    EXPECT_EQ(base.grad().to(kCPU).to_double_vector(), std::vector<double>(6, 1.0));
    ASSERT_TRUE(src.grad().defined());
    EXPECT_EQ(src.grad().shape(), (Shape{0, 3}));
  }
}

TEST(OpErrors, PixelShuffleNeedsTheGridToDivide) {
  EXPECT_THROW(ops::pixel_shuffle(Tensor::zeros({36, 2}), 4), Error);  // 6 % 4 != 0
}

}  // namespace
}  // namespace minivlm
