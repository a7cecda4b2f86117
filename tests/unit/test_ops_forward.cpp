// Every op's forward (f32) against a naive double-precision reference written from the math.
#include <gtest/gtest.h>

#include <cmath>

#include "op_test_util.h"

namespace minivlm {
namespace {

using testing::all_close;
using testing::randn;

std::vector<double> vec(const Tensor& t) { return t.to_double_vector(); }

TEST(OpsForward, MatmulBatchedAndBroadcast) {
  Rng rng(1);
  for (auto [m, k, n] : {std::tuple{1, 1, 1}, {7, 65, 3}, {65, 7, 65}}) {
    Tensor a = randn(rng, {2, m, k}, DType::f32), b = randn(rng, {k, n}, DType::f32);
    const auto av = vec(a), bv = vec(b);
    std::vector<double> ref(static_cast<size_t>(2 * m * n));
    for (int bi = 0; bi < 2; ++bi)
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int t = 0; t < k; ++t) s += av[(bi * m + i) * k + t] * bv[t * n + j];
          ref[(bi * m + i) * n + j] = s;
        }
    EXPECT_TRUE(all_close(ops::matmul(a, b), ref, 1e-5, 1e-5));
    // The same product through transposed views (GEMM transpose flags) and a copy.
    Tensor bt = b.transpose(0, 1).contiguous().transpose(0, 1);
    EXPECT_TRUE(all_close(ops::matmul(a, bt), ref, 1e-5, 1e-5));
  }
}

TEST(OpsForward, LinearWithBias) {
  Rng rng(2);
  Tensor x = randn(rng, {3, 5, 7}, DType::f32), w = randn(rng, {65, 7}, DType::f32),
         b = randn(rng, {65}, DType::f32);
  const auto xv = vec(x), wv = vec(w), bv = vec(b);
  std::vector<double> ref(15 * 65);
  for (int r = 0; r < 15; ++r)
    for (int o = 0; o < 65; ++o) {
      double s = bv[o];
      for (int i = 0; i < 7; ++i) s += xv[r * 7 + i] * wv[o * 7 + i];
      ref[r * 65 + o] = s;
    }
  Tensor y = ops::linear(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{3, 5, 65}));
  EXPECT_TRUE(all_close(y, ref, 1e-5, 1e-5));
}

TEST(OpsForward, ElementwiseBroadcastAndReductions) {
  Rng rng(3);
  Tensor a = randn(rng, {4, 1, 7}, DType::f32), b = randn(rng, {5, 1}, DType::f32);
  const auto av = vec(a), bv = vec(b);
  std::vector<double> add(4 * 5 * 7), mul(4 * 5 * 7), sub(4 * 5 * 7);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 5; ++j)
      for (int k = 0; k < 7; ++k) {
        const size_t o = static_cast<size_t>((i * 5 + j) * 7 + k);
        add[o] = av[i * 7 + k] + bv[j];
        sub[o] = av[i * 7 + k] - bv[j];
        mul[o] = av[i * 7 + k] * bv[j];
      }
  EXPECT_TRUE(all_close(ops::add(a, b), add, 1e-6, 1e-6));
  EXPECT_TRUE(all_close(ops::sub(a, b), sub, 1e-6, 1e-6));
  EXPECT_TRUE(all_close(ops::mul(a, b), mul, 1e-6, 1e-6));
  EXPECT_TRUE(all_close(
      ops::scale(a, -2.5),
      [&] {
        std::vector<double> r = av;
        for (double& v : r) v *= -2.5;
        return r;
      }(),
      1e-6, 1e-6));
  double total = 0;
  std::vector<double> over_last(4, 0.0);
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 7; ++k) {
      total += av[i * 7 + k];
      over_last[i] += av[i * 7 + k];
    }
  EXPECT_NEAR(ops::sum(a).item(), total, 1e-5);
  EXPECT_NEAR(ops::mean(a).item(), total / 28, 1e-6);
  EXPECT_TRUE(all_close(ops::sum(a, -1), over_last, 1e-6, 1e-6));
  EXPECT_EQ(ops::sum(a, -1).shape(), (Shape{4, 1}));
  EXPECT_EQ(ops::mean(a, 0, true).shape(), (Shape{1, 1, 7}));
}

TEST(OpsForward, Activations) {
  Rng rng(4);
  Tensor x = randn(rng, {65}, DType::f32, 3.0), u = randn(rng, {65}, DType::f32);
  const auto xv = vec(x), uv = vec(u);
  std::vector<double> silu, gelu, qg, sw;
  for (size_t i = 0; i < xv.size(); ++i) {
    const double v = xv[i];
    silu.push_back(v / (1 + std::exp(-v)));
    gelu.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
    qg.push_back(v / (1 + std::exp(-1.702 * v)));
    sw.push_back(silu.back() * uv[i]);
  }
  EXPECT_TRUE(all_close(ops::silu(x), silu, 1e-5, 1e-6));
  EXPECT_TRUE(all_close(ops::gelu(x), gelu, 1e-5, 1e-6));
  EXPECT_TRUE(all_close(ops::quick_gelu(x), qg, 1e-5, 1e-6));
  EXPECT_TRUE(all_close(ops::swiglu(x, u), sw, 1e-5, 1e-6));
}

TEST(OpsForward, Softmax) {
  Rng rng(5);
  for (int n : {1, 7, 65}) {
    Tensor x = randn(rng, {3, n}, DType::f32, 4.0);
    const auto xv = vec(x);
    std::vector<double> ref(xv.size());
    for (int r = 0; r < 3; ++r) {
      double mx = -1e300, s = 0;
      for (int i = 0; i < n; ++i) mx = std::max(mx, xv[r * n + i]);
      for (int i = 0; i < n; ++i) s += std::exp(xv[r * n + i] - mx);
      for (int i = 0; i < n; ++i) ref[r * n + i] = std::exp(xv[r * n + i] - mx) / s;
    }
    EXPECT_TRUE(all_close(ops::softmax(x), ref, 1e-5, 1e-7));
  }
}

TEST(OpsForward, RmsNormAndLayerNorm) {
  Rng rng(6);
  for (int n : {1, 7, 65}) {
    Tensor x = randn(rng, {2, 3, n}, DType::f32, 2.0), w = randn(rng, {n}, DType::f32),
           b = randn(rng, {n}, DType::f32);
    const auto xv = vec(x), wv = vec(w), bv = vec(b);
    std::vector<double> rms(xv.size()), ln(xv.size());
    for (int r = 0; r < 6; ++r) {
      double ss = 0, mu = 0, var = 0;
      for (int i = 0; i < n; ++i) {
        ss += xv[r * n + i] * xv[r * n + i];
        mu += xv[r * n + i];
      }
      mu /= n;
      for (int i = 0; i < n; ++i) var += (xv[r * n + i] - mu) * (xv[r * n + i] - mu);
      var /= n;
      for (int i = 0; i < n; ++i) {
        rms[r * n + i] = wv[i] * xv[r * n + i] / std::sqrt(ss / n + 1e-5);
        ln[r * n + i] = wv[i] * (xv[r * n + i] - mu) / std::sqrt(var + 1e-5) + bv[i];
      }
    }
    EXPECT_TRUE(all_close(ops::rmsnorm(x, w, 1e-5), rms, 1e-5, 1e-5));
    EXPECT_TRUE(all_close(ops::layernorm(x, w, b, 1e-5), ln, 1e-4, 1e-5));
  }
}

TEST(OpsForward, RopeHalfSplit) {
  Rng rng(7);
  const int B = 2, T = 7, nh = 3, hd = 8;
  const double theta = 10000.0;
  Tensor x = randn(rng, {B, T, nh, hd}, DType::f32);
  const auto xv = vec(x);
  for (int start : {0, 5}) {
    std::vector<double> ref(xv.size());
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < nh; ++h)
          for (int i = 0; i < hd / 2; ++i) {
            const double ang = (start + t) * std::pow(theta, -2.0 * i / hd);
            const size_t base = static_cast<size_t>(((b * T + t) * nh + h) * hd);
            const double a = xv[base + i], c = xv[base + i + hd / 2];
            ref[base + i] = a * std::cos(ang) - c * std::sin(ang);
            ref[base + i + hd / 2] = c * std::cos(ang) + a * std::sin(ang);
          }
    EXPECT_TRUE(all_close(ops::rope(x, theta, start), ref, 1e-5, 1e-5));
  }
}

// Naive attention in double: every query head h reads kv head h / (nq / nkv).
std::vector<double> naive_attention(const std::vector<double>& q, const std::vector<double>& k,
                                    const std::vector<double>& v, int B, int Tq, int Tk, int nq,
                                    int nkv, int hd, bool causal) {
  std::vector<double> out(static_cast<size_t>(B * Tq * nq * hd), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < nq; ++h) {
      const int kh = h / (nq / nkv);
      for (int i = 0; i < Tq; ++i) {
        std::vector<double> s(static_cast<size_t>(Tk), -INFINITY);
        double mx = -INFINITY;
        for (int j = 0; j < Tk; ++j) {
          if (causal && j > i + (Tk - Tq)) continue;
          double d = 0;
          for (int c = 0; c < hd; ++c)
            d += q[((b * Tq + i) * nq + h) * hd + c] * k[((b * Tk + j) * nkv + kh) * hd + c];
          s[j] = d * scale;
          mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) continue;
        double z = 0;
        for (int j = 0; j < Tk; ++j) z += s[j] == -INFINITY ? 0 : std::exp(s[j] - mx);
        for (int j = 0; j < Tk; ++j) {
          if (s[j] == -INFINITY) continue;
          const double p = std::exp(s[j] - mx) / z;
          for (int c = 0; c < hd; ++c)
            out[((b * Tq + i) * nq + h) * hd + c] += p * v[((b * Tk + j) * nkv + kh) * hd + c];
        }
      }
    }
  return out;
}

TEST(OpsForward, AttentionCausalBidirectionalGqa) {
  Rng rng(8);
  for (int T : {1, 7, 65, 130})
    for (int group : {1, 2, 4})
      for (bool causal : {true, false}) {
        const int B = 2, nkv = 2, nq = nkv * group, hd = 16;
        Tensor q = randn(rng, {B, T, nq, hd}, DType::f32),
               k = randn(rng, {B, T, nkv, hd}, DType::f32),
               v = randn(rng, {B, T, nkv, hd}, DType::f32);
        const auto ref = naive_attention(vec(q), vec(k), vec(v), B, T, T, nq, nkv, hd, causal);
        EXPECT_TRUE(all_close(ops::attention(q, k, v, causal), ref, 1e-4, 1e-5))
            << "T=" << T << " group=" << group << " causal=" << causal;
      }
}

TEST(OpsForward, AttentionFewerQueriesThanKeys) {
  // Decoding with a cache: the last Tq queries against Tk keys, causal offset Tk − Tq.
  Rng rng(9);
  const int B = 1, Tq = 3, Tk = 9, nq = 4, nkv = 2, hd = 8;
  Tensor q = randn(rng, {B, Tq, nq, hd}, DType::f32), k = randn(rng, {B, Tk, nkv, hd}, DType::f32),
         v = randn(rng, {B, Tk, nkv, hd}, DType::f32);
  const auto ref = naive_attention(vec(q), vec(k), vec(v), B, Tq, Tk, nq, nkv, hd, true);
  EXPECT_TRUE(all_close(ops::attention(q, k, v, true), ref, 1e-4, 1e-5));
}

TEST(OpsForward, CrossEntropyMasked) {
  Rng rng(10);
  const int N = 7, V = 65;
  Tensor logits = randn(rng, {N, V}, DType::f32, 3.0);
  const auto lv = vec(logits);
  // Partly masked, fully masked and fully supervised target sets.
  const std::vector<std::vector<int64_t>> cases = {
      {3, -100, 64, 0, -100, 17, 5}, std::vector<int64_t>(N, -100), {1, 2, 3, 4, 5, 6, 7}};
  for (const auto& targets : cases) {
    double total = 0;
    int count = 0;
    for (int i = 0; i < N; ++i) {
      if (targets[i] == -100) continue;
      double mx = -1e300, s = 0;
      for (int j = 0; j < V; ++j) mx = std::max(mx, lv[i * V + j]);
      for (int j = 0; j < V; ++j) s += std::exp(lv[i * V + j] - mx);
      total += mx + std::log(s) - lv[i * V + targets[i]];
      ++count;
    }
    const Tensor t = Tensor::from_vector(targets, {N});
    EXPECT_NEAR(ops::cross_entropy(logits, t).item(), count ? total / count : 0.0, 1e-5);
    EXPECT_NEAR(ops::cross_entropy(logits, t, -100, 11.0).item(), total / 11.0, 1e-5);
  }
}

TEST(OpsForward, EmbeddingGatherScatterConcat) {
  Rng rng(11);
  Tensor w = randn(rng, {7, 5}, DType::f32);
  const auto wv = vec(w);
  const std::vector<int64_t> ids = {6, 0, 3, 3};
  std::vector<double> ref;
  for (int64_t id : ids)
    for (int c = 0; c < 5; ++c) ref.push_back(wv[id * 5 + c]);
  EXPECT_TRUE(all_close(ops::embedding(w, Tensor::from_vector(ids, {2, 2})), ref, 0, 0));
  EXPECT_TRUE(all_close(ops::gather_rows(w, Tensor::from_vector(ids, {4})), ref, 0, 0));

  Tensor src = randn(rng, {2, 5}, DType::f32);
  const auto sv = vec(src);
  std::vector<double> scattered = wv;
  for (int c = 0; c < 5; ++c) {
    scattered[4 * 5 + c] = sv[c];
    scattered[1 * 5 + c] = sv[5 + c];
  }
  EXPECT_TRUE(
      all_close(ops::scatter_rows(w, Tensor::from_vector(std::vector<int64_t>{4, 1}, {2}), src),
                scattered, 0, 0));

  Tensor a = randn(rng, {2, 3}, DType::f32), b = randn(rng, {2, 1}, DType::f32);
  const auto av = vec(a), bv = vec(b);
  EXPECT_TRUE(all_close(ops::concat({a, b}, 1),
                        {av[0], av[1], av[2], bv[0], av[3], av[4], av[5], bv[1]}, 0, 0));
}

TEST(OpsForward, PixelShuffleFollowsTheSpecIndexFormula) {
  Rng rng(12);
  for (int r : {1, 2, 4}) {
    const int G = 8, D = 3, S = G * G, Gr = G / r;
    Tensor x = randn(rng, {2, S, D}, DType::f32);
    const auto xv = vec(x);
    std::vector<double> ref;
    for (int b = 0; b < 2; ++b)
      for (int i = 0; i < S / (r * r); ++i)
        for (int m = 0; m < D * r * r; ++m) {
          const int h2 = i / Gr, w2 = i % Gr, dr = m / (r * D), dc = (m % (r * D)) / D, d = m % D;
          ref.push_back(xv[(b * S + (h2 * r + dr) * G + (w2 * r + dc)) * D + d]);
        }
    Tensor y = ops::pixel_shuffle(x, r);
    EXPECT_EQ(y.shape(), (Shape{2, S / (r * r), D * r * r}));
    EXPECT_TRUE(all_close(y, ref, 0, 0)) << "r=" << r;
  }
  EXPECT_THROW(ops::pixel_shuffle(Tensor::zeros({36, 2}), 4), Error);  // 6 % 4 != 0
}

TEST(OpsForward, PatchEmbedIsAStridedConvolution) {
  Rng rng(13);
  const int B = 2, C = 3, H = 8, W = 12, p = 4, D = 5;
  Tensor px = randn(rng, {B, C, H, W}, DType::f32), w = randn(rng, {D, C, p, p}, DType::f32),
         bias = randn(rng, {D}, DType::f32);
  const auto pv = vec(px), wv = vec(w), bv = vec(bias);
  const int gh = H / p, gw = W / p;
  std::vector<double> ref;
  for (int b = 0; b < B; ++b)
    for (int gy = 0; gy < gh; ++gy)
      for (int gx = 0; gx < gw; ++gx)
        for (int d = 0; d < D; ++d) {
          double s = bv[d];
          for (int c = 0; c < C; ++c)
            for (int ky = 0; ky < p; ++ky)
              for (int kx = 0; kx < p; ++kx)
                s += wv[((d * C + c) * p + ky) * p + kx] *
                     pv[((b * C + c) * H + gy * p + ky) * W + gx * p + kx];
          ref.push_back(s);
        }
  Tensor y = ops::patch_embed(px, w, bias);
  EXPECT_EQ(y.shape(), (Shape{B, gh * gw, D}));
  EXPECT_TRUE(all_close(y, ref, 1e-5, 1e-5));
}

TEST(OpsForward, ShapeErrorsNameBothShapes) {
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

}  // namespace
}  // namespace minivlm
