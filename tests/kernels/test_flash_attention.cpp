// Fused attention kernels (forward, deterministic backward, decode) against naive attention in
// double precision: causal and bidirectional, GQA, query and key counts with tile tails, every
// supported head dim class.
//
// Every case runs under all four schedules of the emulator and must agree bit for bit across them.
// Under MINIVLM_SMALL_SHAPES (the sanitizer builds) every case runs under the default schedule and
// a representative subset under all four.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string trace(const AttentionShape& s) {
  return shape_trace({{"B", s.B},
                      {"Tq", s.Tq},
                      {"Tk", s.Tk},
                      {"Hq", s.Hq},
                      {"Hkv", s.Hkv},
                      {"d", s.d},
                      {"causal", s.causal}});
}

std::size_t q_size(const AttentionShape& s) {
  return static_cast<std::size_t>(s.B) * s.Tq * s.Hq * s.d;
}
std::size_t kv_size(const AttentionShape& s) {
  return static_cast<std::size_t>(s.B) * s.Tk * s.Hkv * s.d;
}
std::size_t at(int b, int t, int heads, int h, int len, int d) {
  return ((static_cast<std::size_t>(b) * len + t) * heads + h) * d;
}

struct Reference {
  std::vector<double> out, lse, dq, dk, dv;
  // dQ and dK with every term of dS = P∘(dP − rowsum) taken by magnitude: the scale their
  // cancellation leaves rounding errors at (a row with one visible key has dS = 0 exactly).
  // dV's terms P·dO likewise: the scale of the error of P rounded to bf16 as an operand.
  std::vector<double> dq_terms, dk_terms, dv_terms;
};

// Softmax attention row by row; backward dV = PᵀdO, dP = dO Vᵀ, dS = P∘(dP − rowsum(P∘dP)),
// dQ = scale·dS K, dK = scale·dSᵀ Q, each kv head summing its group's query heads.
Reference naive_attention(const AttentionShape& s, const std::vector<double>& q,
                          const std::vector<double>& k, const std::vector<double>& v,
                          const std::vector<double>* dout) {
  Reference r{
      std::vector<double>(q_size(s)),  std::vector<double>(flash_backward_scratch_floats(s)),
      std::vector<double>(q_size(s)),  std::vector<double>(kv_size(s)),
      std::vector<double>(kv_size(s)), std::vector<double>(q_size(s)),
      std::vector<double>(kv_size(s)), std::vector<double>(kv_size(s))};
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
  const int group = s.Hq / s.Hkv, d = s.d;
  std::vector<double> p(s.Tk), dp(s.Tk);
  for (int b = 0; b < s.B; ++b) {
    for (int h = 0; h < s.Hq; ++h) {
      const int kh = h / group;
      for (int i = 0; i < s.Tq; ++i) {
        const int end = s.causal ? std::clamp(i + 1 + s.Tk - s.Tq, 0, s.Tk) : s.Tk;
        // Packed rows: the keys of query i's own sample only.
        const int begin = s.seq_start != nullptr ? s.seq_start[b * s.Tq + i] : 0;
        const double* qi = &q[at(b, i, s.Hq, h, s.Tq, d)];
        double mx = -kInf;
        for (int j = 0; j < begin; ++j) p[j] = 0;
        for (int j = begin; j < end; ++j) {
          const double* kj = &k[at(b, j, s.Hkv, kh, s.Tk, d)];
          double dot = 0;
          for (int c = 0; c < d; ++c) dot += qi[c] * kj[c];
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int j = begin; j < end; ++j) sum += (p[j] = std::exp(p[j] - mx));
        const std::size_t stat = (static_cast<std::size_t>(b) * s.Hq + h) * s.Tq + i;
        r.lse[stat] = end > begin ? mx + std::log(sum) : -kInf;
        double* oi = &r.out[at(b, i, s.Hq, h, s.Tq, d)];
        for (int j = begin; j < end; ++j) {
          p[j] /= sum;
          const double* vj = &v[at(b, j, s.Hkv, kh, s.Tk, d)];
          for (int c = 0; c < d; ++c) oi[c] += p[j] * vj[c];
        }
        if (dout == nullptr) continue;
        const double* gi = &(*dout)[at(b, i, s.Hq, h, s.Tq, d)];
        double rowdot = 0;
        for (int j = begin; j < end; ++j) {
          const double* vj = &v[at(b, j, s.Hkv, kh, s.Tk, d)];
          dp[j] = 0;
          for (int c = 0; c < d; ++c) dp[j] += gi[c] * vj[c];
          rowdot += p[j] * dp[j];
        }
        double* dqi = &r.dq[at(b, i, s.Hq, h, s.Tq, d)];
        for (int j = begin; j < end; ++j) {
          const double ds = p[j] * (dp[j] - rowdot);
          const double ds_terms = p[j] * (std::abs(dp[j]) + std::abs(rowdot));
          const std::size_t kj = at(b, j, s.Hkv, kh, s.Tk, d);
          const std::size_t qoff = at(b, i, s.Hq, h, s.Tq, d);
          for (int c = 0; c < d; ++c) {
            dqi[c] += scale * ds * k[kj + c];
            r.dk[kj + c] += scale * ds * qi[c];
            r.dv[kj + c] += p[j] * gi[c];
            r.dq_terms[qoff + c] += scale * ds_terms * std::abs(k[kj + c]);
            r.dk_terms[kj + c] += scale * ds_terms * std::abs(qi[c]);
            r.dv_terms[kj + c] += p[j] * std::abs(gi[c]);
          }
        }
      }
    }
  }
  return r;
}

template <typename T>
struct Inputs {
  std::vector<T> q, k, v, dout;
};

// Scores of standard deviation ~1.3: peaked enough that the running max changes between tiles.
template <typename T>
Inputs<T> inputs(const AttentionShape& s, std::uint64_t seed) {
  return {random_values<T>(q_size(s), seed, -2, 2), random_values<T>(kv_size(s), seed + 1, -2, 2),
          random_values<T>(kv_size(s), seed + 2, -1, 1),
          random_values<T>(q_size(s), seed + 3, -1, 1)};
}

template <typename T>
struct Outputs {
  std::vector<T> out, dq, dk, dv;
  std::vector<float> lse, scratch;
};

template <typename T>
void run_flash(const AttentionShape& s, const Inputs<T>& in, Outputs<T>& o, bool backward) {
  o.out.assign(q_size(s), poison<T>());
  o.lse.assign(flash_backward_scratch_floats(s), poison<float>());
  k::flash_attention_forward(o.out.data(), o.lse.data(), in.q.data(), in.k.data(), in.v.data(), s,
                             nullptr);
  if (!backward) return;
  o.dq.assign(q_size(s), poison<T>());
  o.dk.assign(kv_size(s), poison<T>());
  o.dv.assign(kv_size(s), poison<T>());
  o.scratch.assign(flash_backward_scratch_floats(s), poison<float>());
  k::flash_attention_backward(o.dq.data(), o.dk.data(), o.dv.data(), o.scratch.data(),
                              in.dout.data(), in.q.data(), in.k.data(), in.v.data(), o.out.data(),
                              o.lse.data(), s, nullptr);
}

// lse: −inf exactly where the reference has it, close elsewhere (absolute: it is a log).
void expect_lse(const std::vector<float>& got, const std::vector<double>& ref, double tol) {
  ASSERT_EQ(got.size(), ref.size());
  int reported = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool ok = std::isinf(ref[i]) ? got[i] == -std::numeric_limits<float>::infinity()
                                       : std::abs(got[i] - ref[i]) <= tol * (1 + std::abs(ref[i]));
    if (!ok && reported++ < 5)
      ADD_FAILURE() << "lse[" << i << "] = " << got[i] << ", reference " << ref[i];
  }
}

// fp32: a few ulps of accumulated rounding; bf16: the rounding of the stored output (and of O
// inside the backward's rowsum(dO ∘ O)), relative to the tensor's scale. The gradients' scale is
// that of their terms taken by magnitude (Reference): the bf16 backward rounds P and dS to bf16 as
// tensor-core operands (unit roundoff u = 2^-8), so dV = Σ_i P_i dO_i errs by up to
// u·Σ_i |P_i dO_i| beside its own rounding, which cancellation among the terms can leave large
// next to |dV| (measured: up to 0.8 of that bound, 1.5 % of rms(dV) but 0.5 % of rms(dv_terms)),
// and dQ, dK likewise through dS.
template <typename T>
double out_tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1.0 / 128;
}
template <typename T>
double grad_tolerance() {
  return std::is_same_v<T, float> ? 5e-5 : 2.0 / 128;
}

template <typename T>
void check_case(const AttentionShape& s, bool every_schedule, bool backward = true) {
  SCOPED_TRACE(trace(s));
  const Inputs<T> in = inputs<T>(s, 100 + s.Tq * 7 + s.Tk * 3 + s.d + s.Hq);
  Outputs<T> o;
  if (every_schedule) {
    for_each_schedule([&](ScheduleBits& bits) {
      run_flash(s, in, o, backward);
      bits.check("out", o.out);
      bits.check("lse", o.lse);
      if (!backward) return;
      bits.check("dq", o.dq);
      bits.check("dk", o.dk);
      bits.check("dv", o.dv);
    });
  } else {
    run_flash(s, in, o, backward);
  }
  const std::vector<double> dout = to_double(in.dout);
  const Reference ref = naive_attention(s, to_double(in.q), to_double(in.k), to_double(in.v),
                                        backward ? &dout : nullptr);
  expect_close("out", o.out, ref.out, out_tolerance<T>());
  expect_lse(o.lse, ref.lse, std::is_same_v<T, float> ? 1e-5 : 1e-3);
  if (!backward) return;
  expect_close("dq", o.dq, ref.dq, grad_tolerance<T>(), rms(ref.dq_terms));
  expect_close("dk", o.dk, ref.dk, grad_tolerance<T>(), rms(ref.dk_terms));
  expect_close("dv", o.dv, ref.dv, grad_tolerance<T>(), rms(ref.dv_terms));
}

AttentionShape shape(int B, int Tq, int Tk, int Hq, int Hkv, int d, bool causal) {
  AttentionShape s;
  s.B = B;
  s.Tq = Tq;
  s.Tk = Tk;
  s.Hq = Hq;
  s.Hkv = Hkv;
  s.d = d;
  s.causal = causal;
  return s;
}

template <typename T>
class FlashAttention : public ::testing::Test {};
TYPED_TEST_SUITE(FlashAttention, StorageTypes);

// T ∈ {1, 7, 63, 64, 65, 130} (tails around the 32- and 64-row tiles), d ∈ {64, 72, 96, 128}
// (72: SigLIP so400m's heads, not a multiple of the tensor cores' k16 step), Hq/Hkv ∈ {1, 2, 4}
// with two kv heads, causal and bidirectional, B = 2. Small shapes keep tails, every d and group
// at B = 1.
TYPED_TEST(FlashAttention, ForwardAndGradientsMatchReference) {
  const bool small = small_shapes();
  const std::vector<int> lengths =
      small ? std::vector<int>{1, 7, 65} : std::vector<int>{1, 7, 63, 64, 65, 130};
  for (int T : lengths) {
    for (int d : {64, 72, 96, 128}) {
      for (int group : {1, 2, 4}) {
        for (bool causal : {true, false}) {
          const bool every_schedule = !small || (group == 2 && (T == 7 || (T == 65 && d == 64)));
          check_case<TypeParam>(shape(small ? 1 : 2, T, T, 2 * group, 2, d, causal),
                                every_schedule);
        }
      }
    }
  }
}

// Fewer queries than keys (a chunk of a sequence against its cache) and more (rows at the top
// see no key: out 0, lse −inf, dq 0).
TYPED_TEST(FlashAttention, QueriesAndKeysOfDifferentLengths) {
  const std::vector<std::pair<int, int>> lengths =
      small_shapes() ? std::vector<std::pair<int, int>>{{5, 70}, {40, 9}}
                     : std::vector<std::pair<int, int>>{{5, 70}, {33, 130}, {40, 9}, {100, 64}};
  for (const auto& [Tq, Tk] : lengths) {
    for (bool causal : {true, false}) {
      check_case<TypeParam>(shape(2, Tq, Tk, 4, 2, 64, causal), !small_shapes() || Tq == 40);
    }
  }
}

// The project's own models: d = 32 (LLM) and 48 (vision tower), and 8 (the op tests' tiny heads).
TYPED_TEST(FlashAttention, SmallHeadDims) {
  for (int d : {8, 32, 48}) {
    check_case<TypeParam>(shape(2, 37, 37, 4, 1, d, true), !small_shapes() || d == 48);
    check_case<TypeParam>(shape(1, 50, 50, 3, 3, d, false), !small_shapes());
  }
}

// Head dims that are not a multiple of 16 (the bf16 backward pads its k16 steps over d with
// zeros): 72 (SigLIP so400m's 16 heads), 24 and 40, and 120; gradients across a 64-row tile tail,
// causal and bidirectional, a group of two.
TYPED_TEST(FlashAttention, GradientsOfHeadDimsOffTheK16Grid) {
  for (int d : {72, 24, 40, 120}) {
    if (small_shapes() && d == 120) continue;
    for (bool causal : {true, false}) {
      check_case<TypeParam>(shape(1, 70, 70, 4, 2, d, causal),
                            !small_shapes() || (d == 72 && causal));
    }
  }
}

// Packed rows (seq_start): each query sees only the keys of its own sample; boundaries inside
// and on the 32-row tiles, a one-token sample, and padding after the last sample.
TYPED_TEST(FlashAttention, PackedRowsMatchReference) {
  const std::vector<std::vector<int>> rows = {{20, 45, 30, 1, 34}, {64, 60}};
  const int T = 130;
  std::vector<int> starts;
  for (const std::vector<int>& row : rows) {
    int at = 0;
    for (int len : row) {
      starts.insert(starts.end(), static_cast<std::size_t>(len), at);
      at += len;
    }
    starts.insert(starts.end(), static_cast<std::size_t>(T - at), at);
  }
  for (int d : {32, 64}) {
    for (int group : {1, 2}) {
      AttentionShape s = shape(2, T, T, 2 * group, 2, d, true);
      s.seq_start = starts.data();
      check_case<TypeParam>(s, !small_shapes() || (d == 32 && group == 2));
    }
  }
}

template <typename T>
void check_decode(const AttentionShape& s, bool every_schedule) {
  const int L = s.Tk, d = s.d;
  SCOPED_TRACE(trace(s));
  const Inputs<T> in = inputs<T>(s, 300 + L + d + s.Hq);
  std::vector<T> out;
  std::vector<float> lse, scratch(flash_decode_scratch_floats(s));
  auto run = [&] {
    out.assign(q_size(s), poison<T>());
    lse.assign(s.B * s.Hq, poison<float>());
    scratch.assign(scratch.size(), poison<float>());
    k::flash_attention_decode(out.data(), lse.data(), scratch.data(), in.q.data(), in.k.data(),
                              in.v.data(), s, nullptr);
  };
  if (every_schedule) {
    for_each_schedule([&](ScheduleBits& bits) {
      run();
      bits.check("out", out);
      bits.check("lse", lse);
    });
  } else {
    run();
  }
  const Reference ref =
      naive_attention(s, to_double(in.q), to_double(in.k), to_double(in.v), nullptr);
  expect_close("out", out, ref.out, out_tolerance<T>());
  expect_lse(lse, ref.lse, std::is_same_v<T, float> ? 1e-5 : 1e-3);
}

// A decode step against caches of one to several chunks (kFlashDecodeChunk keys each), GQA
// groups of 1, 2 and 4 query heads per kv head, and 20 (more than the 16 rows of one mma tile:
// two row blocks, the second partial); d = 72 is not a multiple of 16.
TYPED_TEST(FlashAttention, DecodeMatchesReference) {
  using T = TypeParam;
  const bool small = small_shapes();
  const std::vector<int> lengths =
      small ? std::vector<int>{1, kFlashDecodeChunk + 1, 300}
            : std::vector<int>{1, 7, kFlashDecodeChunk, kFlashDecodeChunk + 1, 300, 1000};
  for (int L : lengths) {
    for (int d : {32, 64, 72, 128}) {
      for (int group : {1, 2, 4, 20}) {
        // Small shapes: d = 64 (every schedule), 72 and 128; groups 1 and 4, 20 at L = 300.
        if (small && (d == 32 || group == 2 || (group == 20 && L != 300))) continue;
        check_decode<T>(shape(2, 1, L, 2 * group, 2, d, true), !small || d == 64);
      }
    }
  }
}

TEST(FlashAttention, EmptyCacheGivesZeroRows) {
  const AttentionShape s = shape(1, 1, 0, 2, 1, 16, true);
  std::vector<float> q(q_size(s), 1.0f), out(q_size(s), poison<float>()), lse(2, 0.0f);
  k::flash_attention_decode(out.data(), lse.data(), static_cast<float*>(nullptr), q.data(),
                            static_cast<const float*>(nullptr), static_cast<const float*>(nullptr),
                            s, nullptr);
  for (float x : out) EXPECT_EQ(x, 0.0f);
  for (float x : lse) EXPECT_EQ(x, -std::numeric_limits<float>::infinity());
}

TEST(FlashAttention, RejectsUnsupportedHeadDimsAndGroups) {
  std::vector<float> buf(4096, 0.0f);
  float* p = buf.data();
  for (int d : {0, 100, 136}) {
    try {
      k::flash_attention_forward(p, p, p, p, p, shape(1, 4, 4, 2, 1, d, true), nullptr);
      ADD_FAILURE() << "head dim " << d << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("head dim " + std::to_string(d)), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(k::flash_attention_backward(p, p, p, p, p, p, p, p, p, p,
                                           shape(1, 4, 4, 3, 2, 64, false), nullptr),
               std::invalid_argument);
  EXPECT_THROW(
      k::flash_attention_decode(p, p, p, p, p, p, shape(1, 2, 4, 2, 1, 64, false), nullptr),
      std::invalid_argument);
}

}  // namespace
}  // namespace minivlm::kernels::test
