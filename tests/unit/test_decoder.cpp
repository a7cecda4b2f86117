// The CPU decode fast path (cpu/decode.h) against the op graph it replaces: f32 logits equal the
// cached forward_hidden + logits path up to summation order, bf16 and i8 weights stay within their
// rounding of them with the same greedy tokens, and the row-split gemv kernels (vector and
// portable) and the int8 quantizers equal their definitions.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/node.h"
#include "core/rng.h"
#include "cpu/bf16.h"
#include "cpu/gemv.h"
#include "infer/generate.h"
#include "cpu/decode.h"
#include "nn/vlm.h"

namespace minivlm {
namespace {

// The test model (vocab 6400, hidden 64, 2 layers, GQA 4/2) with its matrices scaled up so that
// the logits spread far from ties. qk_norm on exercises the per-head norms too.
// With `experts` > 0 the MLPs are a mixture of that many experts, `top_k` per token.
std::unique_ptr<MiniMindLM> test_lm(bool qk_norm, int64_t experts = 0, int64_t top_k = 1,
                                    bool norm_topk = true) {
  std::ifstream f(std::string(MINIVLM_SOURCE_DIR) + "/tests/fixtures/test-model.json");
  ModelConfig c = ModelConfig::from_json(nlohmann::json::parse(f), "test-model.json");
  c.llm.qk_norm = qk_norm;
  if (experts > 0) {
    c.llm.use_moe = true;
    c.llm.num_experts = experts;
    c.llm.num_experts_per_tok = top_k;
    c.llm.moe_intermediate_size = 96;
    c.llm.norm_topk_prob = norm_topk;
  }
  auto lm = std::make_unique<MiniMindLM>(c.llm);
  Rng rng(3);
  lm->init(rng);
  ParamList ps;
  lm->params(ps);
  for (NamedTensor& p : ps) {
    if (p.name.find("norm") != std::string::npos) continue;
    float* d = p.tensor.data<float>();
    for (int64_t i = 0; i < p.tensor.numel(); ++i) d[i] *= 8.0f;
  }
  return lm;
}

struct Steps {
  std::vector<std::vector<float>> logits;  // per step, [B · V]
};

// Prefills `prompt` rows through the op graph, then feeds `steps` fixed tokens per row either
// through the op graph (decoder == nullptr) or through the decode step.
Steps decode(const MiniMindLM& lm, const DecodeWeights* weights, int64_t B, int64_t steps) {
  NoGradGuard no_grad;
  const int64_t T = 7, V = lm.config().vocab_size;
  std::vector<int64_t> prompt(static_cast<size_t>(B * T));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int64_t>(37 * i + 5) % V;
  KVCache cache = KVCache::allocate(lm.config(), B, T + steps);
  lm.forward_hidden(lm.embed(Tensor::from_vector(prompt, {B, T})), 0, &cache);
  std::unique_ptr<Decoder> dec;
  if (weights != nullptr)
    dec = std::make_unique<Decoder>(lm, std::shared_ptr<const DecodeWeights>(weights, [](auto*) {}),
                                    B, T + steps);
  Steps run;
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<int64_t> ids(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) ids[b] = (101 * s + 13 * b + 7) % V;
    if (dec) {
      const float* l = dec->step(ids.data(), cache);
      run.logits.emplace_back(l, l + B * V);
    } else {
      const Tensor h =
          lm.forward_hidden(lm.embed(Tensor::from_vector(ids, {B, 1})), cache.length, &cache);
      run.logits.push_back(lm.logits(h).to_float_vector());
    }
  }
  return run;
}

// max |a − b| / max |b| over every step.
double max_rel_diff(const Steps& a, const Steps& b) {
  double diff = 0, scale = 0;
  for (size_t s = 0; s < b.logits.size(); ++s)
    for (size_t i = 0; i < b.logits[s].size(); ++i) {
      diff = std::max(diff, static_cast<double>(std::fabs(a.logits[s][i] - b.logits[s][i])));
      scale = std::max(scale, static_cast<double>(std::fabs(b.logits[s][i])));
    }
  return diff / scale;
}

TEST(Decoder, F32StepEqualsTheOpGraph) {
  for (const bool qk_norm : {false, true}) {
    const auto lm = test_lm(qk_norm);
    const auto w = DecodeWeights::build(*lm, DecodeDtype::f32);
    const Steps ref = decode(*lm, nullptr, 2, 6);
    const Steps got = decode(*lm, w.get(), 2, 6);
    EXPECT_LT(max_rel_diff(got, ref), 2e-6) << "qk_norm " << qk_norm;
  }
}

// Mixture-of-experts layers: batch rows that choose different experts, top-1 and top-2, with and
// without renormalised weights; the op graph's moe_forward is checked against MiniMind-3's own
// code in test_moe.
TEST(Decoder, F32MoeStepEqualsTheOpGraph) {
  struct Case {
    int64_t experts, top_k;
    bool norm;
  };
  for (const Case k : {Case{4, 1, true}, Case{4, 2, true}, Case{6, 2, false}}) {
    const auto lm = test_lm(false, k.experts, k.top_k, k.norm);
    for (const int64_t B : {1, 3}) {
      const auto w = DecodeWeights::build(*lm, DecodeDtype::f32);
      const Steps ref = decode(*lm, nullptr, B, 6);
      const Steps got = decode(*lm, w.get(), B, 6);
      EXPECT_LT(max_rel_diff(got, ref), 2e-6)
          << k.experts << " experts, top " << k.top_k << ", batch " << B;
    }
  }
}

// Reduced-precision decode weights against the f32 op graph: logits within `bound` of the
// largest logit (and really different from it), the same greedy token at every step.
void expect_close_with_same_argmax(DecodeDtype dtype, double bound) {
  const auto lm = test_lm(false);
  const auto w = DecodeWeights::build(*lm, dtype);
  const int64_t V = lm->config().vocab_size;
  const Steps ref = decode(*lm, nullptr, 2, 6);
  const Steps got = decode(*lm, w.get(), 2, 6);
  const double rel = max_rel_diff(got, ref);
  EXPECT_LT(rel, bound) << decode_dtype_name(dtype);
  EXPECT_GT(rel, 1e-5) << decode_dtype_name(dtype);  // the copies are really used
  for (size_t s = 0; s < ref.logits.size(); ++s)
    for (int64_t b = 0; b < 2; ++b) {
      const auto argmax = [&](const std::vector<float>& l) {
        return std::max_element(l.begin() + b * V, l.begin() + (b + 1) * V) - l.begin();
      };
      EXPECT_EQ(argmax(got.logits[s]), argmax(ref.logits[s]))
          << decode_dtype_name(dtype) << " step " << s << " row " << b;
    }
}

TEST(Decoder, Bf16StepStaysWithinBf16RoundingAndKeepsTheArgmax) {
  // Weights and inputs of every product rounded to 8 significant bits (relative 2⁻⁹ each).
  expect_close_with_same_argmax(DecodeDtype::bf16, 3e-2);  // measured 1.0e-2
}

TEST(Decoder, I8StepStaysWithin8BitRoundingAndKeepsTheArgmax) {
  // Weights and inputs quantized to 255 levels of their row's largest magnitude.
  expect_close_with_same_argmax(DecodeDtype::i8, 0.15);  // measured 5.6e-2
}

// n standard normal values.
std::vector<float> normal_values(Rng& rng, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// Every gemv loop; the ones this CPU lacks are skipped (portable and, on x86-64 of the last decade,
// avx2 always run).
constexpr cpu::GemvKernel kKernels[] = {cpu::GemvKernel::portable, cpu::GemvKernel::avx2,
                                        cpu::GemvKernel::avx512};

// y [M, N] after a gemv_rows over output rows [n0, n1) of a y that was 0.5 everywhere: dot(m, n)
// inside the range (plus the 0.5 when accumulating), 0.5 untouched outside it; within
// abs_tol + rel_tol · |expected|.
template <typename Dot>
void expect_gemv_rows(const std::vector<float>& y, int64_t M, int64_t N, int64_t n0, int64_t n1,
                      bool accumulate, Dot dot, double abs_tol, double rel_tol,
                      const std::string& what) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double want = 0.5;
      if (n >= n0 && n < n1) want = accumulate ? want + dot(m, n) : dot(m, n);
      EXPECT_NEAR(y[m * N + n], want, abs_tol + rel_tol * std::fabs(want))
          << what << " row " << m << " out " << n;
    }
}

TEST(Decoder, Int8QuantizationAndGemvMatchTheirDefinitions) {
  // K not a multiple of 64 (the masked tail), N not a multiple of 4, 3 rows, a row range inside
  // the matrix, and the accumulating form.
  const int64_t N = 23, K = 141, M = 3, n0 = 5, n1 = 22;
  Rng rng(12);
  std::vector<float> w = normal_values(rng, N * K), x = normal_values(rng, M * K);
  w[7] = 0;
  std::vector<int8_t> q(w.size());
  std::vector<float> ws(N), xs(M);
  std::vector<int32_t> qsum(N);
  std::vector<uint8_t> xq(x.size());
  cpu::quantize_rows_i8(w.data(), N, K, q.data(), ws.data(), qsum.data());
  for (int64_t m = 0; m < M; ++m) xs[m] = cpu::quantize_u8(&x[m * K], K, &xq[m * K]);
  for (int64_t n = 0; n < N; ++n) {
    int32_t sum = 0, largest = 0;
    for (int64_t k = 0; k < K; ++k) {
      EXPECT_NEAR(ws[n] * q[n * K + k], w[n * K + k], ws[n] * 0.5001) << n << "," << k;
      sum += q[n * K + k];
      largest = std::max(largest, std::abs(static_cast<int32_t>(q[n * K + k])));
    }
    EXPECT_EQ(qsum[n], sum);
    EXPECT_EQ(largest, 127) << "row " << n << " does not use the full range";
  }
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k)
      EXPECT_NEAR(xs[m] * (xq[m * K + k] - 128), x[m * K + k], xs[m] * 0.5001) << m << "," << k;
  for (const cpu::GemvKernel kernel : kKernels)
    for (const bool accumulate : {false, true}) {
      if (!cpu::gemv_kernel_runs(kernel, cpu::GemvWeights::i8)) continue;
      std::vector<float> y(M * N, 0.5f);
      const cpu::I8Rows wr{q.data(), ws.data(), qsum.data()};
      const cpu::U8Rows xr{xq.data(), xs.data()};
      cpu::gemv_rows(wr, K, xr, M, y.data(), N, n0, n1, accumulate, kernel);
      const auto dot = [&](int64_t m, int64_t n) {
        double d = 0;
        for (int64_t k = 0; k < K; ++k)
          d += static_cast<double>(ws[n]) * q[n * K + k] * xs[m] * (xq[m * K + k] - 128);
        return d;
      };
      expect_gemv_rows(y, M, N, n0, n1, accumulate, dot, 1e-4, 1e-4,
                       std::string("kernel ") + cpu::gemv_kernel_name(kernel));
    }
}

// Each kernel gives a row of x the same bits whether it is multiplied alone or with other rows
// (the batched loops share the weights' loads, not the sums): K with a tail, rows in fours and
// alone, rows of x in fours, in twos and alone.
TEST(Decoder, GemvRowIsTheSameAloneOrInABatch) {
  const int64_t N = 22, K = 93, M = 7;
  Rng rng(5);
  const std::vector<float> w = normal_values(rng, N * K), x = normal_values(rng, M * K);
  std::vector<uint16_t> wb(w.size()), xb(x.size());
  cpu::f32_to_bf16(w.data(), wb.data(), N * K);
  cpu::f32_to_bf16(x.data(), xb.data(), M * K);
  std::vector<int8_t> q(w.size());
  std::vector<float> scale(N), xs(M);
  std::vector<int32_t> q_sum(N);
  cpu::quantize_rows_i8(w.data(), N, K, q.data(), scale.data(), q_sum.data());
  std::vector<uint8_t> xq(x.size());
  for (int64_t m = 0; m < M; ++m) xs[m] = cpu::quantize_u8(x.data() + m * K, K, &xq[m * K]);
  for (const cpu::GemvWeights kind :
       {cpu::GemvWeights::f32, cpu::GemvWeights::bf16, cpu::GemvWeights::i8})
    for (const cpu::GemvKernel kernel : kKernels) {
      if (!cpu::gemv_kernel_runs(kernel, kind)) continue;
      const auto product = [&](int64_t m0, int64_t rows, float* y) {
        switch (kind) {
          case cpu::GemvWeights::f32:
            return cpu::gemv_rows(w.data(), K, x.data() + m0 * K, rows, y, N, 0, N, false, kernel);
          case cpu::GemvWeights::bf16:
            return cpu::gemv_rows(wb.data(), K, xb.data() + m0 * K, rows, y, N, 0, N, false,
                                  kernel);
          case cpu::GemvWeights::i8:
            return cpu::gemv_rows(cpu::I8Rows{q.data(), scale.data(), q_sum.data()}, K,
                                  cpu::U8Rows{xq.data() + m0 * K, xs.data() + m0}, rows, y, N, 0, N,
                                  false, kernel);
        }
      };
      std::vector<float> together(M * N), alone(M * N);
      product(0, M, together.data());
      for (int64_t m = 0; m < M; ++m) product(m, 1, alone.data() + m * N);
      EXPECT_EQ(together, alone) << "weights " << static_cast<int>(kind) << " kernel "
                                 << cpu::gemv_kernel_name(kernel);
    }
}

TEST(Decoder, GemvRowsMatchADoubleReference) {
  // K not a multiple of 32 (the masked tail), N not a multiple of 4 (single rows), 3 rows of x,
  // a row range that starts inside the matrix, and the accumulating form.
  const int64_t N = 23, K = 77, M = 3, n0 = 5, n1 = 22;
  Rng rng(11);
  const std::vector<float> w = normal_values(rng, N * K), x = normal_values(rng, M * K);
  std::vector<uint16_t> wb(w.size()), xb(x.size());
  cpu::f32_to_bf16(w.data(), wb.data(), N * K);
  cpu::f32_to_bf16(x.data(), xb.data(), M * K);
  for (const bool bf16 : {false, true})
    for (const cpu::GemvKernel kernel : kKernels)
      for (const bool accumulate : {false, true}) {
        if (!cpu::gemv_kernel_runs(kernel, bf16 ? cpu::GemvWeights::bf16 : cpu::GemvWeights::f32))
          continue;
        std::vector<float> y(M * N, 0.5f);
        if (bf16)
          cpu::gemv_rows(wb.data(), K, xb.data(), M, y.data(), N, n0, n1, accumulate, kernel);
        else
          cpu::gemv_rows(w.data(), K, x.data(), M, y.data(), N, n0, n1, accumulate, kernel);
        const auto dot = [&](int64_t m, int64_t n) {
          double d = 0;
          for (int64_t k = 0; k < K; ++k)
            d += bf16 ? static_cast<double>(bf16_to_f32(wb[n * K + k])) * bf16_to_f32(xb[m * K + k])
                      : static_cast<double>(w[n * K + k]) * x[m * K + k];
          return d;
        };
        expect_gemv_rows(
            y, M, N, n0, n1, accumulate, dot, 1e-4, 0.0,
            std::string(bf16 ? "bf16" : "f32") + " kernel " + cpu::gemv_kernel_name(kernel));
      }
}

// The thread count only splits each matrix's rows: one thread, all of them and the weights' own
// choice give the same bits.
TEST(Decoder, ThreadCountsGiveTheSameLogits) {
  const auto lm = test_lm(false);
  const auto w = DecodeWeights::build(*lm, DecodeDtype::bf16);
  EXPECT_GE(w->auto_threads, 1);
  EXPECT_LE(w->auto_threads, omp_get_max_threads());
  std::vector<std::vector<float>> runs;
  for (const int threads : {1, 0, kAutoDecodeThreads}) {
    KVCache cache = KVCache::allocate(lm->config(), 2, 6);
    Decoder dec(*lm, w, 2, 6, threads);
    EXPECT_EQ(dec.threads(), threads == 1                    ? 1
                             : threads == kAutoDecodeThreads ? w->auto_threads
                                                             : omp_get_max_threads());
    // Steps of several rows (these) take every thread unless a count was given.
    EXPECT_EQ(dec.threads(2), threads == 1 ? 1 : omp_get_max_threads());
    std::vector<float> all;
    for (int64_t s = 0; s < 5; ++s) {
      const int64_t ids[2] = {3 * s + 1, 7 * s + 2};
      const float* l = dec.step(ids, cache);
      all.insert(all.end(), l, l + 2 * lm->config().vocab_size);
    }
    runs.push_back(all);
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
  EXPECT_EQ(parse_decode_threads("auto"), kAutoDecodeThreads);
  EXPECT_EQ(parse_decode_threads("0"), 0);
  EXPECT_EQ(parse_decode_threads("3"), 3);
  for (const char* bad : {"", "x", "-2", "2x", "1.5"}) {
    try {
      parse_decode_threads(bad);
      FAIL() << "expected an error for '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("expected auto or a thread count"), std::string::npos)
          << e.what();
    }
  }
}

// One row decoded alone: prefill `prompt`, then feed `ids` one at a time; the logits of each step.
std::vector<std::vector<float>> alone(const MiniMindLM& lm, std::shared_ptr<const DecodeWeights> w,
                                      const std::vector<int64_t>& prompt,
                                      const std::vector<int64_t>& ids) {
  NoGradGuard no_grad;
  const int64_t T = static_cast<int64_t>(prompt.size()), V = lm.config().vocab_size;
  KVCache cache = KVCache::allocate(lm.config(), 1, 32);
  lm.forward_hidden(lm.embed(Tensor::from_vector(prompt, {1, T})), 0, &cache);
  Decoder dec(lm, std::move(w), 1, 32);
  std::vector<std::vector<float>> out;
  for (const int64_t id : ids) {
    const float* l = dec.step(&id, cache);
    out.emplace_back(l, l + V);
  }
  return out;
}

// Continuous batching: rows at positions of their own, in any slots of a larger cache, joining and
// leaving between steps, get the logits each gets decoded alone, bit for bit.
TEST(Decoder, RowsAtTheirOwnPositionsEqualEachRowDecodedAlone) {
  for (const int64_t experts : {0, 4}) {
    const auto lm = test_lm(true, experts, 2);
    const int64_t V = lm->config().vocab_size;
    for (const DecodeDtype dtype : {DecodeDtype::f32, DecodeDtype::bf16, DecodeDtype::i8}) {
      const auto w = DecodeWeights::build(*lm, dtype);
      const std::vector<int64_t> prompt_a = {5, 17, 301, 44, 9},
                                 prompt_b = {8, 1, 2, 3, 77, 600, 12, 40, 41};
      const std::vector<int64_t> ids_a = {11, 12, 13, 14, 15, 16}, ids_b = {21, 22, 23, 24};
      const auto want_a = alone(*lm, w, prompt_a, ids_a), want_b = alone(*lm, w, prompt_b, ids_b);

      NoGradGuard no_grad;
      KVCache cache = KVCache::allocate(lm->config(), 3, 32);
      const auto prefill = [&](const std::vector<int64_t>& prompt, int64_t slot) {
        KVCache row = cache.row(slot);
        lm->forward_hidden(
            lm->embed(Tensor::from_vector(prompt, {1, static_cast<int64_t>(prompt.size())})), 0,
            &row);
      };
      Decoder dec(*lm, w, 3, 32);
      // A in slot 2 steps alone twice; B joins in slot 0; A leaves after its sixth token.
      prefill(prompt_a, 2);
      std::vector<std::vector<float>> got_a, got_b;
      for (int64_t s = 0; s < 6; ++s) {
        std::vector<int64_t> ids = {ids_a[s]}, slots = {2},
                             pos = {static_cast<int64_t>(prompt_a.size()) + s};
        if (s == 2) prefill(prompt_b, 0);
        if (s >= 2) {
          ids.insert(ids.begin(), ids_b[s - 2]);  // B first: rows need not follow the slots
          slots.insert(slots.begin(), 0);
          pos.insert(pos.begin(), static_cast<int64_t>(prompt_b.size()) + s - 2);
        }
        const int64_t n = static_cast<int64_t>(ids.size());
        const float* l = dec.step_rows(n, ids.data(), slots.data(), pos.data(), cache);
        got_a.emplace_back(l + (n - 1) * V, l + n * V);
        if (n == 2) got_b.emplace_back(l, l + V);
      }
      EXPECT_EQ(got_a, want_a) << "experts " << experts << " " << decode_dtype_name(dtype);
      EXPECT_EQ(got_b, want_b) << "experts " << experts << " " << decode_dtype_name(dtype);
      // A bad slot or a position past the cache is an error, not a write out of bounds.
      const int64_t id = 1, bad_slot = 3, slot = 1, past = 32, zero = 0;
      EXPECT_THROW(dec.step_rows(1, &id, &bad_slot, &zero, cache), Error);
      EXPECT_THROW(dec.step_rows(1, &id, &slot, &past, cache), Error);
    }
  }
}

TEST(Decoder, RejectsAnUnknownDtypeAndAForeignCache) {
  try {
    parse_decode_dtype("f16");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("valid: f32, bf16, i8"), std::string::npos) << e.what();
  }
  const auto lm = test_lm(false);
  Decoder dec(*lm, DecodeWeights::build(*lm, DecodeDtype::f32), 2, 8);
  KVCache one_row = KVCache::allocate(lm->config(), 1, 8);
  const int64_t ids[2] = {1, 2};
  EXPECT_THROW(dec.step(ids, one_row), Error);
}

}  // namespace
}  // namespace minivlm
