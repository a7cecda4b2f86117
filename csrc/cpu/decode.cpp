#include "cpu/decode.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/bf16.h"
#include "cpu/gemv.h"
#include "cpu/row_kernels.h"
#include "cpu/vec_exp.h"

namespace minivlm {

namespace {

// This thread's share [first, second) of n rows, in multiples of the gemv's 4-row tiles.
std::pair<int64_t, int64_t> share(int64_t n, int t, int nt) {
  const int64_t chunk = ((n + nt - 1) / nt + 3) / 4 * 4;
  return {std::min(n, t * chunk), std::min(n, (t + 1) * chunk)};
}

DecodeMatrix decode_matrix(const Tensor& w, DecodeDtype dtype) {
  MV_CHECK(w.device().is_cpu() && w.dtype() == DType::f32 && w.is_contiguous() && w.dim() == 2,
           "decode weights: ", w.name(), " must be a contiguous 2-D f32 CPU tensor, got ",
           w.desc());
  DecodeMatrix m;
  m.rows = w.size(0);
  m.cols = w.size(1);
  switch (dtype) {
    case DecodeDtype::f32:
      m.w = w.detach();
      break;
    case DecodeDtype::bf16:
      m.w = Tensor::empty(w.shape(), DType::bf16);
      cpu::f32_to_bf16(w.data<float>(), static_cast<uint16_t*>(m.w.raw_data()), w.numel());
      break;
    case DecodeDtype::i8:
      m.q.resize(static_cast<size_t>(w.numel()));
      m.scale.resize(static_cast<size_t>(m.rows));
      m.q_sum.resize(static_cast<size_t>(m.rows));
      cpu::quantize_rows_i8(w.data<float>(), m.rows, m.cols, m.q.data(), m.scale.data(),
                            m.q_sum.data());
      break;
  }
  return m;
}

// Seconds for `threads` threads to stream the bytes of `ms` once (each thread its share of every
// matrix), the median of `passes`.
double stream_seconds(const std::vector<const DecodeMatrix*>& ms, int threads, int passes) {
  std::vector<double> secs;
  for (int p = 0; p < passes; ++p) {
    float sink = 0;
    const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      float acc[16] = {};
      for (const DecodeMatrix* m : ms) {
        const bool i8 = !m->q.empty();
        const auto* f =
            static_cast<const float*>(i8 ? static_cast<const void*>(m->q.data()) : m->w.raw_data());
        const int64_t n = static_cast<int64_t>((i8 ? m->q.size() : m->w.nbytes()) / sizeof(float));
        const int64_t i1 = n * (t + 1) / nt;
        for (int64_t i = n * t / nt; i + 16 <= i1; i += 16)
#pragma omp simd
          for (int l = 0; l < 16; ++l) acc[l] += f[i + l];
      }
      for (const float v : acc) sink += v;
    }
    secs.push_back(omp_get_wtime() - t0);
    [[maybe_unused]] static volatile float kept;  // the sums must not be optimised away
    kept = sink;
  }
  std::nth_element(secs.begin(), secs.begin() + passes / 2, secs.end());
  return secs[static_cast<size_t>(passes / 2)];
}

int measure_auto_threads(const DecodeWeights& w) {
  const int all = omp_get_max_threads();
  if (all <= 1) return 1;
  std::vector<const DecodeMatrix*> ms = {&w.lm_head};
  for (const DecodeWeights::Layer& l : w.layers) {
    for (const DecodeMatrix* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
      if (m->rows > 0) ms.push_back(m);
    for (const DecodeWeights::Expert& e : l.experts)
      for (const DecodeMatrix* m : {&e.gate, &e.up, &e.down}) ms.push_back(m);
  }
  stream_seconds(ms, all, 1);  // warm-up: page faults, thread start
  return stream_seconds(ms, 1, 3) >= 1.3 * stream_seconds(ms, all, 3) ? all : 1;
}

}  // namespace

std::shared_ptr<const DecodeWeights> DecodeWeights::build(const MiniMindLM& lm, DecodeDtype dtype) {
  auto w = std::make_shared<DecodeWeights>();
  w->dtype = dtype;
  for (const DecoderLayer& l : lm.layers) {
    DecodeWeights::Layer& d = w->layers.emplace_back();
    d.q = decode_matrix(l.q_proj, dtype);
    d.k = decode_matrix(l.k_proj, dtype);
    d.v = decode_matrix(l.v_proj, dtype);
    d.o = decode_matrix(l.o_proj, dtype);
    if (l.experts.empty()) {
      d.gate = decode_matrix(l.gate_proj, dtype);
      d.up = decode_matrix(l.up_proj, dtype);
      d.down = decode_matrix(l.down_proj, dtype);
      continue;
    }
    d.router = decode_matrix(l.router, DecodeDtype::f32);
    for (const SwigluMlp& e : l.experts)
      d.experts.push_back({decode_matrix(e.gate_proj, dtype), decode_matrix(e.up_proj, dtype),
                           decode_matrix(e.down_proj, dtype)});
  }
  w->lm_head = decode_matrix(lm.lm_head.defined() ? lm.lm_head : lm.embed_tokens, dtype);
  w->auto_threads = measure_auto_threads(*w);
  return w;
}

Decoder::Decoder(const MiniMindLM& lm, std::shared_ptr<const DecodeWeights> weights, int64_t batch,
                 int64_t max_len, int threads)
    : lm_(lm), w_(std::move(weights)), batch_(batch), max_len_(max_len) {
  const LlmConfig& c = lm.config();
  MV_CHECK(w_ && w_->layers.size() == lm.layers.size(),
           "decoder: the decode weights do not belong to this model");
  const int64_t H = c.hidden_size, qd = c.num_attention_heads * c.head_dim,
                kd = c.num_key_value_heads * c.head_dim,
                I = c.use_moe ? c.moe_intermediate_size : c.intermediate_size,
                E = c.use_moe ? c.num_experts : 0;
  const auto rows = [&](int64_t n) { return std::vector<float>(static_cast<size_t>(batch * n)); };
  h_ = rows(H);
  q_ = rows(qd);
  k_ = rows(kd);
  v_ = rows(kd);
  att_ = rows(qd);
  gate_ = rows(I);
  up_ = rows(I);
  router_ = rows(E);
  logits_ = rows(c.vocab_size);
  cos_.resize(static_cast<size_t>(batch * (c.head_dim / 2)));
  for (int64_t f = 0; f < c.head_dim / 2; ++f)
    inv_freq_.push_back(
        std::pow(c.rope_theta, -2.0 * static_cast<double>(f) / static_cast<double>(c.head_dim)));
  sin_.resize(cos_.size());
  const size_t widest = static_cast<size_t>(batch * std::max({H, qd, I}));
  scratch_.resize(static_cast<size_t>(threads > 0 ? threads : omp_get_max_threads()));
  one_row_threads_ = threads == kAutoDecodeThreads
                         ? std::min(w_->auto_threads, static_cast<int>(scratch_.size()))
                         : static_cast<int>(scratch_.size());
  for (ThreadScratch& s : scratch_) {
    s.x.resize(widest);
    if (w_->dtype == DecodeDtype::bf16) s.xb.resize(widest);
    if (w_->dtype == DecodeDtype::i8) {
      s.xq.resize(widest);
      s.xs.resize(static_cast<size_t>(batch));
    }
    s.scores.resize(static_cast<size_t>(max_len));
    s.route.resize(static_cast<size_t>(batch * E));
    s.order.resize(static_cast<size_t>(E));
    s.expert_weight.resize(static_cast<size_t>(batch));
  }
}

void Decoder::normalize(const float* h, const Tensor& weight, ThreadScratch& s) const {
  const LlmConfig& c = lm_.config();
  const int64_t H = c.hidden_size;
  for (int64_t b = 0; b < n_; ++b)
    cpu::rmsnorm_row(h + b * H, weight.data<float>(), H, c.rms_norm_eps, s.x.data() + b * H);
}

void Decoder::product(const DecodeMatrix& w, const float* in, float* y, bool accumulate, int t,
                      int nt, ThreadScratch& s, bool input_ready) {
  const auto [n0, n1] = share(w.rows, t, nt);
  const int64_t k = w.cols, ldy = w.rows;
  const DecodeDtype dtype = !w.q.empty()                 ? DecodeDtype::i8
                            : w.w.dtype() == DType::bf16 ? DecodeDtype::bf16
                                                         : DecodeDtype::f32;
  switch (dtype) {
    case DecodeDtype::f32:
      cpu::gemv_rows(w.w.data<float>(), k, in, n_, y, ldy, n0, n1, accumulate);
      break;
    case DecodeDtype::bf16:
      if (!input_ready) cpu::f32_to_bf16(in, s.xb.data(), n_ * k);
      cpu::gemv_rows(static_cast<const uint16_t*>(w.w.raw_data()), k, s.xb.data(), n_, y, ldy, n0,
                     n1, accumulate);
      break;
    case DecodeDtype::i8:
      if (!input_ready)
        for (int64_t b = 0; b < n_; ++b) s.xs[b] = cpu::quantize_u8(in + b * k, k, &s.xq[b * k]);
      cpu::gemv_rows(cpu::I8Rows{w.q.data(), w.scale.data(), w.q_sum.data()}, k,
                     cpu::U8Rows{s.xq.data(), s.xs.data()}, n_, y, ldy, n0, n1, accumulate);
      break;
  }
}

// Row i's kv head g: normalize and rotate the new key, append key and value to the row's cache
// slot at its position, then each query head of the group attends to every cached position of
// the slot (the new one included).
void Decoder::attend(size_t l, int64_t i, int64_t g, KVCache& cache, ThreadScratch& s) {
  const LlmConfig& c = lm_.config();
  const DecoderLayer& ml = lm_.layers[l];
  const int64_t hd = c.head_dim, half = hd / 2, nq = c.num_attention_heads,
                nkv = c.num_key_value_heads, group = nq / nkv, cap = cache.capacity();
  const int64_t b = i, slot = slots_[i], pos = positions_[i];
  const float* cos = cos_.data() + i * half;
  const float* sin = sin_.data() + i * half;
  float* kc = cache.k[l].data<float>() + ((slot * cap) * nkv + g) * hd;
  float* vc = cache.v[l].data<float>() + ((slot * cap) * nkv + g) * hd;
  const int64_t stride = nkv * hd;  // between positions
  float* knew = kc + pos * stride;
  const float* kin = k_.data() + (b * nkv + g) * hd;
  if (c.qk_norm)
    cpu::rmsnorm_row(kin, ml.k_norm.data<float>(), hd, c.rms_norm_eps, knew);
  else
    std::copy_n(kin, hd, knew);
  cpu::rope_row(knew, cos, sin, half, knew);
  std::copy_n(v_.data() + (b * nkv + g) * hd, hd, vc + pos * stride);

  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  float* p = s.scores.data();
  for (int64_t h = g * group; h < (g + 1) * group; ++h) {
    float* q = q_.data() + (b * nq + h) * hd;
    if (c.qk_norm) cpu::rmsnorm_row(q, ml.q_norm.data<float>(), hd, c.rms_norm_eps, q);
    cpu::rope_row(q, cos, sin, half, q);
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j <= pos; ++j) {
      const float* kj = kc + j * stride;
      float dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t i = 0; i < hd; ++i) dot += q[i] * kj[i];
      p[j] = scale * dot;
      mx = std::max(mx, p[j]);
    }
#pragma omp simd
    for (int64_t j = 0; j <= pos; ++j) p[j] = cpu::exp_vec(p[j] - mx);
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j <= pos; ++j) sum += p[j];
    const float inv = static_cast<float>(1.0 / sum);
    float* o = att_.data() + (b * nq + h) * hd;
    std::fill_n(o, hd, 0.0f);
    for (int64_t j = 0; j <= pos; ++j) {
      const float* vj = vc + j * stride;
      const float pj = p[j] * inv;
#pragma omp simd
      for (int64_t i = 0; i < hd; ++i) o[i] += pj * vj[i];
    }
  }
}

void Decoder::run_layer(size_t l, KVCache& cache, int t, int nt) {
  const LlmConfig& c = lm_.config();
  const DecoderLayer& ml = lm_.layers[l];
  const DecodeWeights::Layer& w = w_->layers[l];
  const int64_t nkv = c.num_key_value_heads;
  ThreadScratch& s = scratch_[static_cast<size_t>(t)];

  normalize(h_.data(), ml.input_norm, s);
  product(w.q, s.x.data(), q_.data(), false, t, nt, s);
  product(w.k, s.x.data(), k_.data(), false, t, nt, s, true);
  product(w.v, s.x.data(), v_.data(), false, t, nt, s, true);
#pragma omp barrier
  for (int64_t task = t; task < n_ * nkv; task += nt) attend(l, task / nkv, task % nkv, cache, s);
#pragma omp barrier
  product(w.o, att_.data(), h_.data(), true, t, nt, s);  // h += attention output
#pragma omp barrier
  normalize(h_.data(), ml.post_norm, s);
  if (w.experts.empty())
    mlp(w.gate, w.up, w.down, nullptr, t, nt, s);
  else
    moe(w, t, nt, s);
}

void Decoder::mlp(const DecodeMatrix& gate, const DecodeMatrix& up, const DecodeMatrix& down,
                  const float* row_weights, int t, int nt, ThreadScratch& s) {
  const int64_t I = gate.rows;
  product(gate, s.x.data(), gate_.data(), false, t, nt, s);
  product(up, s.x.data(), up_.data(), false, t, nt, s, true);
  const auto [i0, i1] = share(I, t, nt);  // the rows gate and up just computed
  for (int64_t b = 0; b < n_; ++b) {
    float* g = gate_.data() + b * I;
    const float* u = up_.data() + b * I;
    const float rw = row_weights != nullptr ? row_weights[b] : 1.0f;
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) g[i] = g[i] / (1.0f + cpu::exp_vec(-g[i])) * u[i] * rw;
  }
#pragma omp barrier
  product(down, gate_.data(), h_.data(), true, t, nt, s);  // h += MLP output
#pragma omp barrier
}

// Routing as moe_forward does it: softmax over the router's logits, each row's k largest
// probabilities (the larger first, ties to the lower expert), renormalised when norm_topk_prob.
// Every thread routes for itself (E is small), so no thread waits for another's choice.
void Decoder::moe(const DecodeWeights::Layer& w, int t, int nt, ThreadScratch& s) {
  const LlmConfig& c = lm_.config();
  const int64_t E = c.num_experts, k = c.num_experts_per_tok;
  product(w.router, s.x.data(), router_.data(), false, t, nt, s);
#pragma omp barrier
  std::fill(s.route.begin(), s.route.end(), 0.0f);
  for (int64_t b = 0; b < n_; ++b) {
    const float* logit = router_.data() + b * E;
    const float mx = *std::max_element(logit, logit + E);
    double total = 0;
    for (int64_t e = 0; e < E; ++e) total += std::exp(static_cast<double>(logit[e] - mx));
    for (int64_t e = 0; e < E; ++e) {  // a stable insertion sort, larger logits first
      int64_t i = e;
      for (; i > 0 && logit[s.order[i - 1]] < logit[e]; --i) s.order[i] = s.order[i - 1];
      s.order[i] = e;
    }
    double chosen = 0;
    for (int64_t j = 0; j < k; ++j) chosen += std::exp(static_cast<double>(logit[s.order[j]] - mx));
    const double denom = c.norm_topk_prob ? chosen : total;
    for (int64_t j = 0; j < k; ++j)
      s.route[b * E + s.order[j]] =
          static_cast<float>(std::exp(static_cast<double>(logit[s.order[j]] - mx)) / denom);
  }
  std::vector<float>& weights = s.expert_weight;
  for (int64_t e = 0; e < E; ++e) {
    bool used = false;
    for (int64_t b = 0; b < n_; ++b) {
      weights[b] = s.route[b * E + e];
      used = used || weights[b] != 0;
    }
    if (used) mlp(w.experts[e].gate, w.experts[e].up, w.experts[e].down, weights.data(), t, nt, s);
  }
}

const float* Decoder::step_rows(int64_t n, const int64_t* ids, const int64_t* slots,
                                const int64_t* positions, KVCache& cache) {
  const LlmConfig& c = lm_.config();
  const int64_t H = c.hidden_size, V = c.vocab_size,
                rows = cache.k.empty() ? 0 : cache.k[0].size(0);
  MV_CHECK(cache.k.size() == lm_.layers.size(), "decoder: the KV cache has ", cache.k.size(),
           " layers; expected ", lm_.layers.size());
  MV_CHECK(n > 0 && n <= batch_, "decoder: ", n, " rows for a decoder of ", batch_);
  const float* table = lm_.embed_tokens.data<float>();
  const int64_t half = c.head_dim / 2;
  for (int64_t i = 0; i < n; ++i) {
    MV_CHECK(slots[i] >= 0 && slots[i] < rows, "decoder: cache slot ", slots[i],
             " of a KV cache of ", rows, " rows");
    MV_CHECK(positions[i] >= 0 && positions[i] < cache.capacity() && positions[i] < max_len_,
             "KV cache overflow: position ", positions[i], " for a cache of ", cache.capacity(),
             " and a decoder of ", max_len_);
    MV_CHECK(ids[i] >= 0 && ids[i] < V, "decoder: token id ", ids[i], " outside the vocabulary of ",
             V);
    std::copy_n(table + ids[i] * H, H, h_.data() + i * H);
    for (int64_t f = 0; f < half; ++f) {
      const double angle = static_cast<double>(positions[i]) * inv_freq_[f];
      cos_[i * half + f] = static_cast<float>(std::cos(angle));
      sin_[i * half + f] = static_cast<float>(std::sin(angle));
    }
  }
  n_ = n;
  slots_ = slots;
  positions_ = positions;
#pragma omp parallel num_threads(threads(n))
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    for (size_t l = 0; l < lm_.layers.size(); ++l) run_layer(l, cache, t, nt);
    ThreadScratch& s = scratch_[static_cast<size_t>(t)];
    normalize(h_.data(), lm_.final_norm, s);
    product(w_->lm_head, s.x.data(), logits_.data(), false, t, nt, s);
  }
  return logits_.data();
}

namespace {

const bool registered = [] {
  register_decode_fast_path(DeviceType::cpu,
                            {[](const MiniMindLM& lm, int64_t batch, int64_t max_len,
                                const DecodeOptions& o) -> std::unique_ptr<DecodeStep> {
                               return std::make_unique<Decoder>(
                                   lm, o.weights ? o.weights : DecodeWeights::build(lm, o.dtype),
                                   batch, max_len, o.threads);
                             },
                             &DecodeWeights::build});
  return true;
}();

}  // namespace

}  // namespace minivlm
