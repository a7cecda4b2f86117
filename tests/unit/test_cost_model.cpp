// The GPU cost model's counts (cuda/cost_model.h, kernels/cost.h) against hand counts: a training
// step (forward, loss, backward, gradient norm, AdamW) and a decode step of the test model's
// language model on cuda-emu, recorded while they run. Every expected total is computed here from
// the config by formula (2·m·n·k per GEMM, 4·d per visible query/key pair, the bytes each op's
// operands and outputs occupy), not by the recorder's cost functions. A shape-only recording of the
// same step gives the same launches.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/rng.h"
#include "dist/communicator.h"
#include "cuda/cost_model.h"
#include "device_test_util.h"
#include "nn/config.h"
#include "nn/decode_step.h"
#include "nn/llm.h"
#include "nn/vlm.h"
#include "ops/ops.h"
#include "optim/adamw.h"
#include "train/step.h"

namespace minivlm {
namespace {

using testing::kEmu;

LlmConfig test_config() {
  std::ifstream f(MINIVLM_SOURCE_DIR "/tests/fixtures/test-model.json");
  EXPECT_TRUE(f) << "tests/fixtures/test-model.json";
  LlmConfig c = ModelConfig::from_json(nlohmann::json::parse(f), "test-model.json").llm;
  return c;
}

// Totals of the recorded launches whose name is `name` ("" = all).
struct Totals {
  double bytes = 0, flops = 0, model_flops = 0;
  int64_t launches = 0;
};
Totals totals(const std::vector<cuda::CostRecord>& records, const std::string& name) {
  Totals t;
  for (const cuda::CostRecord& r : records) {
    if (!name.empty() && name != r.name) continue;
    t.bytes += r.cost.bytes;
    t.flops += r.cost.flops;
    t.model_flops += r.cost.model_flops;
    ++t.launches;
  }
  return t;
}

// One training step of the LM on cuda-emu in `dtype`, every parameter trainable, recorded.
std::vector<cuda::CostRecord> train_step(const LlmConfig& c, int64_t B, int64_t T, DType dtype,
                                         bool execute) {
  MiniMindLM lm(c);
  Rng rng(5);
  lm.init(rng);
  ParamList params;
  lm.params(params);
  for (NamedTensor& p : params) p.tensor.set_requires_grad(true);
  AdamW optim(params, AdamWConfig{});
  optim.to(kEmu, dtype);
  std::vector<int64_t> idv(static_cast<size_t>(B * T)), tv(idv.size());
  for (size_t i = 0; i < idv.size(); ++i) {
    idv[i] = static_cast<int64_t>((i * 37 + 11) % 6000);
    tv[i] = static_cast<int64_t>((i * 53 + 7) % 6000);
  }
  const Tensor ids = Tensor::from_vector(idv, {B, T}).to(kEmu);
  const Tensor targets = Tensor::from_vector(tv, {B * T}).to(kEmu);
  cuda::CostRecording recording(execute);
  const Tensor logits = lm.logits(lm.forward_hidden(lm.embed(ids)));
  const Tensor loss = ops::cross_entropy(logits.reshape({B * T, c.vocab_size}), targets);
  loss.backward();
  const double norm = grad_norm(optim.params());
  optim.step(1e-3, norm > 1 ? 1 / norm : 1.0);
  if (execute) {
    EXPECT_TRUE(std::isfinite(loss.item()));
    EXPECT_GT(norm, 0);
  }
  return recording.take();
}

// The hand count of one linear's GEMMs over N rows, in → out features: the forward, and in the
// backward the input gradient (N × in, over out) and the weight gradient (out × in, over N).
struct Linear {
  int64_t in, out;
};
std::vector<Linear> layer_linears(const LlmConfig& c) {
  const int64_t H = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim, I = c.intermediate_size;
  return {{H, q}, {H, kv}, {H, kv}, {q, H}, {H, I}, {H, I}, {I, H}};
}

// Every layer's linears, then the tied LM head.
std::vector<Linear> lm_linears(const LlmConfig& c) {
  std::vector<Linear> all;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    for (const Linear& x : layer_linears(c)) all.push_back(x);
  all.push_back({c.hidden_size, c.vocab_size});
  return all;
}

TEST(CostModel, TrainingStepCountsMatchHandCount) {
  const LlmConfig c = test_config();
  const int64_t B = 2, T = 24, N = B * T, L = c.num_hidden_layers, H = c.hidden_size,
                V = c.vocab_size, d = c.head_dim, Hq = c.num_attention_heads,
                Hkv = c.num_key_value_heads;
  const double e = 4;  // f32 storage
  const std::vector<cuda::CostRecord> rec = train_step(c, B, T, DType::f32, /*execute=*/true);

  // GEMMs: every linear of every layer plus the tied LM head, forward and both gradients.
  double gemm_flops = 0, gemm_bytes = 0;
  int64_t gemms = 0;
  const std::vector<Linear> linears = lm_linears(c);
  for (const Linear& x : linears) {
    const double m = static_cast<double>(N), in = static_cast<double>(x.in),
                 out = static_cast<double>(x.out);
    gemm_flops += 3 * 2 * m * in * out;
    gemm_bytes += (m * in + in * out + m * out) * e;  // forward: X, W, Y
    gemm_bytes += (m * out + out * in + m * in) * e;  // dX = dY · W
    gemm_bytes += (out * m + m * in + out * in) * e;  // dW = dYᵀ · X
    gemms += 3;
  }
  const Totals g = totals(rec, "gemm");
  EXPECT_EQ(g.launches, gemms);
  EXPECT_DOUBLE_EQ(g.flops, gemm_flops);
  EXPECT_DOUBLE_EQ(g.model_flops, gemm_flops);
  EXPECT_DOUBLE_EQ(g.bytes, gemm_bytes);

  // Causal attention: T(T+1)/2 visible pairs per (row, query head); forward 4·d per pair,
  // backward 10·d executed (QKᵀ recomputed), 8·d of it the model's.
  const double pairs = static_cast<double>(B * Hq) * static_cast<double>(T * (T + 1) / 2);
  const Totals af = totals(rec, "flash_attention_forward");
  const Totals ab = totals(rec, "flash_attention_backward");
  EXPECT_EQ(af.launches, L);
  EXPECT_EQ(ab.launches, L);
  EXPECT_DOUBLE_EQ(af.flops, static_cast<double>(L) * 4 * d * pairs);
  EXPECT_DOUBLE_EQ(ab.flops, static_cast<double>(L) * 10 * d * pairs);
  EXPECT_DOUBLE_EQ(ab.model_flops, static_cast<double>(L) * 8 * d * pairs);
  const double q_elems = static_cast<double>(N * Hq * d),
               kv_elems = static_cast<double>(N * Hkv * d);
  const double lse = 4.0 * static_cast<double>(B * Hq * T);
  // forward: q, k, v read, out written, lse written
  EXPECT_DOUBLE_EQ(af.bytes, static_cast<double>(L) * ((2 * q_elems + 2 * kv_elems) * e + lse));
  // backward: q, k, v, out, dout, lse read, dq, dk, dv written, rowsum(dO∘O) written and read
  EXPECT_DOUBLE_EQ(ab.bytes,
                   static_cast<double>(L) * ((4 * q_elems + 4 * kv_elems) * e + lse + 2 * lse));

  // The loss: logits read and overwritten by their gradient, targets and per-row losses.
  const Totals ce = totals(rec, "cross_entropy_forward_backward");
  EXPECT_EQ(ce.launches, 1);
  EXPECT_DOUBLE_EQ(ce.bytes, 2.0 * N * V * e + 8.0 * N);

  // RMSNorm forward: two per layer and the final one, each x read, y written, weight, rstd.
  const Totals rn = totals(rec, "rmsnorm_forward");
  EXPECT_EQ(rn.launches, 2 * L + 1);
  EXPECT_DOUBLE_EQ(rn.bytes, static_cast<double>(2 * L + 1) * ((2.0 * N * H + H) * e + 4.0 * N));

  // The embedding gather: ids, rows read and written.
  const Totals emb = totals(rec, "embedding_forward");
  EXPECT_EQ(emb.launches, 1);
  EXPECT_DOUBLE_EQ(emb.bytes, 2.0 * N * H * e + 4.0 * N);

  // AdamW in f32 (no master copy): per parameter p read and written, g read, m and v read and
  // written (fp32).
  int64_t n_params = H;  // the final norm
  n_params += V * H;     // the tied embedding
  for (int64_t l = 0; l < L; ++l) {
    n_params += 2 * H;  // the two norms
    for (const Linear& x : layer_linears(c)) n_params += x.in * x.out;
  }
  const Totals adam = totals(rec, "adamw_update");
  EXPECT_EQ(adam.launches, 2 + 9 * L);  // one per parameter tensor
  EXPECT_DOUBLE_EQ(adam.bytes, static_cast<double>(n_params) * (3 * e + 16));
  // The gradient norm reads every gradient once.
  const Totals gn = totals(rec, "global_norm_partials");
  EXPECT_EQ(gn.launches, 2 + 9 * L);
  double partials = 0;
  for (const cuda::CostRecord& r : rec)
    if (std::string(r.name) == "global_norm_partials")
      partials += static_cast<double>(r.cost.result);
  EXPECT_DOUBLE_EQ(gn.bytes, static_cast<double>(n_params) * e + 4 * partials);

  // The step's model FLOPs: the GEMMs and the attention matmuls, nothing else.
  EXPECT_DOUBLE_EQ(totals(rec, "").model_flops,
                   gemm_flops + static_cast<double>(L) * (4 + 8) * d * pairs);
}

// Shape-only recording (nothing launched, device memory untouched) records the same launches as a
// step that runs, and the bf16 step moves half the bytes of its 16-bit operands.
TEST(CostModel, ShapeOnlyRecordsTheSameLaunches) {
  const LlmConfig c = test_config();
  const std::vector<cuda::CostRecord> run = train_step(c, 2, 24, DType::bf16, true);
  const std::vector<cuda::CostRecord> shapes = train_step(c, 2, 24, DType::bf16, false);
  ASSERT_EQ(run.size(), shapes.size());
  for (size_t i = 0; i < run.size(); ++i) {
    EXPECT_STREQ(run[i].name, shapes[i].name) << "launch " << i;
    EXPECT_EQ(run[i].cost.bytes, shapes[i].cost.bytes) << "launch " << i << " " << run[i].name;
    EXPECT_EQ(run[i].cost.flops, shapes[i].cost.flops) << "launch " << i << " " << run[i].name;
  }
  // bf16 GEMMs are tensor-core work at 2 bytes per element: half the f32 step's GEMM bytes.
  const std::vector<cuda::CostRecord> f32 = train_step(c, 2, 24, DType::f32, false);
  EXPECT_DOUBLE_EQ(totals(run, "gemm").bytes * 2, totals(f32, "gemm").bytes);
  EXPECT_DOUBLE_EQ(totals(run, "gemm").flops, totals(f32, "gemm").flops);
  for (const cuda::CostRecord& r : run) {
    if (std::string(r.name) == "gemm" || std::string(r.name).rfind("flash_attention", 0) == 0) {
      EXPECT_TRUE(r.cost.tensor_core) << r.name;
    }
  }
  for (const cuda::CostRecord& r : f32) {
    if (std::string(r.name) == "gemm") {
      EXPECT_FALSE(r.cost.tensor_core);
    }
  }
}

// The trainers' step (train/step.h) on a batch with one image per sample: the frozen CLIP tower
// runs forward only, the projector gets its weight gradient only (its input needs none), the LLM
// forward and both gradients over every token, and the LM head over the supervised rows alone.
TEST(CostModel, VlmTrainingStepGemmsMatchHandCount) {
  std::ifstream f(MINIVLM_SOURCE_DIR "/tests/fixtures/test-model.json");
  ASSERT_TRUE(f);
  const ModelConfig config = ModelConfig::from_json(nlohmann::json::parse(f), "test-model.json");
  const LlmConfig& c = config.llm;
  const VisionConfig& vc = config.vision;
  const int64_t image_token = c.vocab_size - 1;
  MiniMindVLM model(config, image_token);
  model.init(3);
  for (NamedTensor& p : model.params()) {
    const bool llm = p.name.rfind("model.", 0) == 0 || p.name == "lm_head.weight";
    p.tensor.set_requires_grad(llm || p.name.rfind("vision_proj.", 0) == 0);
  }
  AdamW optim(model.trainable_params(), AdamWConfig{});
  optim.to(kEmu, DType::f32);
  for (NamedTensor& p : model.params())
    if (!p.tensor.requires_grad()) p.tensor.set_data(p.tensor.detach().to(kEmu));

  // Rows of T tokens: one text token, the image's tokens, then text supervised to the end.
  const int64_t B = 2, T = 24, G = vc.image_size / vc.patch_size,
                r = config.projector.pixel_shuffle, n_img = (G / r) * (G / r), S = vc.image_size;
  ASSERT_EQ(n_img, config.tokens_per_image());
  std::vector<int64_t> ids(static_cast<size_t>(B * T)), mask(ids.size(), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const bool image = t >= 1 && t <= n_img;
      ids[b * T + t] = image ? image_token : (b * 31 + t * 7) % 5000;
      mask[b * T + t] = t > n_img ? 1 : 0;
    }
  VlmBatch batch;
  batch.ids = Tensor::from_vector(ids, {B, T});
  batch.label_mask = Tensor::from_vector(mask, {B, T});
  batch.pixels = Tensor::full({B, vc.num_channels, S, S}, 0.25);
  batch.images_per_sample.assign(static_cast<size_t>(B), 1);
  const int64_t M = B * (T - 1 - n_img);  // targets: positions n_img .. T−2 of each row
  ASSERT_EQ(batch.supervised_tokens(), M);
  const auto comm = make_single_communicator();
  TrainStep step(model, optim, *comm, 1.0);
  const MicroInput micro[] = {{&batch, M}};
  cuda::CostRecording recording(/*execute=*/true);
  const StepResult res = step.run(micro, 1e-4);
  EXPECT_TRUE(std::isfinite(res.loss));
  const std::vector<cuda::CostRecord> rec = recording.take();

  const auto mnk = [](double m, double n, double k) { return 2 * m * n * k; };
  const double N = static_cast<double>(B * T), H = static_cast<double>(c.hidden_size),
               V = static_cast<double>(c.vocab_size), D = static_cast<double>(vc.hidden_size),
               Iv = static_cast<double>(vc.intermediate_size),
               rows_v = static_cast<double>(B * (G * G + 1));
  double want = 0;
  int64_t gemms = 0;
  // The tower, forward: the patch embedding over B·G² patches of C·p² pixels, then per layer
  // q, k, v, o and the MLP over the G² + 1 tokens (class token included) of each image.
  want += mnk(static_cast<double>(B * G * G), D,
              static_cast<double>(vc.num_channels * vc.patch_size * vc.patch_size));
  ++gemms;
  for (int64_t l = 0; l < vc.num_hidden_layers; ++l) {
    want += 4 * mnk(rows_v, D, D) + 2 * mnk(rows_v, Iv, D);
    gemms += 6;
  }
  // The projector over B·n_img shuffled tokens of D·r² features: forward and weight gradient.
  want += 2 * mnk(static_cast<double>(B * n_img), H, D * static_cast<double>(r * r));
  gemms += 2;
  // The LLM over every token, three GEMMs per linear; the head over the M supervised rows.
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    for (const Linear& x : layer_linears(c)) {
      want += 3 * mnk(N, static_cast<double>(x.out), static_cast<double>(x.in));
      gemms += 3;
    }
  want += 3 * mnk(static_cast<double>(M), V, H);
  gemms += 3;
  const Totals g = totals(rec, "gemm");
  EXPECT_EQ(g.launches, gemms);
  EXPECT_DOUBLE_EQ(g.flops, want);

  // Attention: the tower's, full over G² + 1 tokens, forward only; the LLM's causal over T.
  const double vision_pairs =
      static_cast<double>(B * vc.num_attention_heads * (G * G + 1) * (G * G + 1));
  const double llm_pairs = static_cast<double>(B * c.num_attention_heads * T * (T + 1) / 2);
  const double hd_v = D / static_cast<double>(vc.num_attention_heads);
  EXPECT_EQ(totals(rec, "flash_attention_forward").launches,
            vc.num_hidden_layers + c.num_hidden_layers);
  EXPECT_DOUBLE_EQ(totals(rec, "flash_attention_forward").flops,
                   static_cast<double>(vc.num_hidden_layers) * 4 * hd_v * vision_pairs +
                       static_cast<double>(c.num_hidden_layers) * 4 * c.head_dim * llm_pairs);
  EXPECT_EQ(totals(rec, "flash_attention_backward").launches, c.num_hidden_layers);
  // The loss over the M supervised rows.
  EXPECT_DOUBLE_EQ(totals(rec, "cross_entropy_forward_backward").bytes, 2 * M * V * 4 + 8.0 * M);
}

TEST(CostModel, DecodeStepCountsMatchHandCount) {
  const LlmConfig c = test_config();
  const int64_t B = 3, context = 200, L = c.num_hidden_layers, d = c.head_dim,
                Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, Tk = context + 1;
  const double e = 4;
  MiniMindLM lm(c);
  Rng rng(9);
  lm.init(rng);
  ParamList params;
  lm.params(params);
  for (NamedTensor& p : params) p.tensor.set_data(p.tensor.detach().to(kEmu));
  NoGradGuard no_grad;
  KVCache cache = KVCache::allocate(c, B, Tk, kEmu);
  cache.length = context;
  const auto decoder = make_decode_step(lm, B, Tk, {});
  const std::vector<int64_t> ids = {3, 4, 5};
  cuda::CostRecording recording(/*execute=*/true);
  decoder->step(ids.data(), cache);
  const std::vector<cuda::CostRecord> rec = recording.take();

  // GEMMs: B rows through every linear and the LM head.
  double flops = 0, bytes = 0;
  int64_t gemms = 0;
  const std::vector<Linear> linears = lm_linears(c);
  for (const Linear& x : linears) {
    const double m = static_cast<double>(B), in = static_cast<double>(x.in),
                 out = static_cast<double>(x.out);
    flops += 2 * m * in * out;
    bytes += (m * in + in * out + m * out) * e;
    ++gemms;
  }
  const Totals g = totals(rec, "gemm");
  EXPECT_EQ(g.launches, gemms);
  EXPECT_DOUBLE_EQ(g.flops, flops);
  EXPECT_DOUBLE_EQ(g.bytes, bytes);

  // Decode attention: each query head sees all Tk keys; the whole cache is read once; with more
  // than one chunk of 128 keys each (row, head, chunk) writes and the combine reads (m, l, acc[d]).
  const Totals a = totals(rec, "flash_attention_decode");
  EXPECT_EQ(a.launches, L);
  EXPECT_DOUBLE_EQ(a.flops, static_cast<double>(L * B * Hq * Tk) * 4 * d);
  const double chunks = 2;  // 201 keys
  const double io = (2.0 * B * Hq * d + 2.0 * B * Tk * Hkv * d) * e + 4.0 * B * Hq +
                    8.0 * B * Hq * chunks * (d + 2);
  EXPECT_DOUBLE_EQ(a.bytes, static_cast<double>(L) * io);
  EXPECT_EQ(totals(rec, "flash_attention_forward").launches, 0);

  // The prediction is the roofline of each launch plus the launch overhead: decode at batch 3 is
  // bound by bytes throughout.
  const cuda::GpuSpec& h100 = cuda::gpu_spec("h100");
  const cuda::StepPrediction p = cuda::predict(rec, h100);
  EXPECT_EQ(p.launches, static_cast<int64_t>(rec.size()));
  double want = 0;
  for (const cuda::CostRecord& r : rec)
    want +=
        std::max(r.cost.bytes / 3.35e12, r.cost.flops / (r.cost.tensor_core ? 989.4e12 : 66.9e12)) +
        2e-6;
  EXPECT_NEAR(p.seconds, want, 1e-12);
  EXPECT_NEAR(p.mfu, p.model_flops / (p.seconds * 989.4e12), 1e-12);
  EXPECT_THROW(cuda::gpu_spec("a100"), Error);
}

TEST(CostModel, OneRecordingAtATime) {
  cuda::CostRecording a(true);
  EXPECT_THROW(cuda::CostRecording b(false), Error);
}

}  // namespace
}  // namespace minivlm
