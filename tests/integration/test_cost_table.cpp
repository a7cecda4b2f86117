// The rows of docs/performance.md's cost-model table, as `bench-model --predict` computes them
// (shape-only, bf16, B 16 × T 1024 training with one image per sample; decode at a 1024-token
// context, batch 1 and 8), against hand counts from each model's config: the GEMMs' FLOPs and
// bytes, attention's FLOPs and bytes, the loss's and AdamW's bytes. Written from the architecture
// (docs/SPEC.md §1, §7, §8), not from kernels/cost.h.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "cli_util.h"

namespace minivlm {
namespace {

using nlohmann::json;
using testing::kBin;
using testing::kSource;
using testing::run;

constexpr double kE = 2;  // bytes per element: bf16 storage

json predict(const std::string& model, const std::string& args) {
  const auto r = run(kBin + "/minivlm bench-model --config " + kSource + "/configs/" + model +
                     ".json --device cuda-emu --dtype bf16 --predict h100 " + args);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const size_t end = r.output.find_last_not_of('\n');
  const size_t start = r.output.rfind('\n', end);
  return json::parse(r.output.substr(start == std::string::npos ? 0 : start + 1))["predict"];
}

struct Kernel {
  double bytes = 0, flops = 0;
  int64_t launches = 0;
};
Kernel kernel(const json& p, const std::string& name) {
  for (const json& k : p["kernels"])
    if (k["name"] == name)
      return {k["bytes"].get<double>(), k["flops"].get<double>(), k["launches"].get<int64_t>()};
  return {};
}

struct Model {
  json c;
  double V, H, L, Hq, Hkv, d, I;         // LLM
  double D, Dl, Di, heads, G, Lv, C, p;  // vision tower
  double r, n_img, proj_in;
  bool mlp_projector, proj_bias, qk_norm;
};
Model load(const std::string& name) {
  std::ifstream f(kSource + "/configs/" + name + ".json");
  Model m;
  m.c = json::parse(f);
  const json &l = m.c["llm"], &v = m.c["vision"], &pr = m.c["projector"];
  m.V = l["vocab_size"];
  m.H = l["hidden_size"];
  m.L = l["num_hidden_layers"];
  m.Hq = l["num_attention_heads"];
  m.Hkv = l["num_key_value_heads"];
  m.d = l["head_dim"];
  m.I = l["intermediate_size"];
  m.qk_norm = l.value("qk_norm", false);
  m.D = v["hidden_size"];
  m.Dl = v["num_hidden_layers"];
  m.Di = v["intermediate_size"];
  m.heads = v["num_attention_heads"];
  m.p = v["patch_size"];
  m.C = v["num_channels"];
  m.G = v["image_size"].get<double>() / m.p;
  m.Lv = m.G * m.G + (v["type"] == "clip" ? 1 : 0);  // CLIP prepends a class token
  m.r = pr["pixel_shuffle"];
  m.n_img = (m.G / m.r) * (m.G / m.r);
  m.proj_in = m.D * m.r * m.r;
  m.mlp_projector = pr.value("type", "linear") == "mlp";
  m.proj_bias = pr.value("bias", false);
  return m;
}

// The LLM's linears per layer: in, out.
std::vector<std::pair<double, double>> llm_linears(const Model& m) {
  const double q = m.Hq * m.d, kv = m.Hkv * m.d;
  return {{m.H, q}, {m.H, kv}, {m.H, kv}, {q, m.H}, {m.H, m.I}, {m.H, m.I}, {m.I, m.H}};
}

struct Gemms {
  double flops = 0, bytes = 0;
  int64_t n = 0;
  void forward(double rows, double in, double out) {
    flops += 2 * rows * in * out;
    bytes += (rows * in + in * out + rows * out) * kE;
    ++n;
  }
  void input_grad(double rows, double in, double out) { forward(rows, out, in); }
  void weight_grad(double rows, double in, double out) {
    flops += 2 * rows * in * out;
    bytes += (out * rows + rows * in + out * in) * kE;
    ++n;
  }
  void trained(double rows, double in, double out) {
    forward(rows, in, out);
    input_grad(rows, in, out);
    weight_grad(rows, in, out);
  }
};

TEST(CostTable, TrainingRowsMatchHandCount) {
  const double B = 16, T = 1024;
  for (const std::string name : {"minimind2-small-v", "minimind3-v", "smolvlm-256m"}) {
    SCOPED_TRACE(name);
    const Model m = load(name);
    const json p = predict(name, "--what train --batch 16 --seq 1024");
    const double N = B * T, M = B * (T - 1 - m.n_img);  // supervised rows: after the image

    Gemms g;
    // The frozen tower, forward: patch embedding, then q, k, v, o and the MLP per layer.
    g.forward(B * m.G * m.G, m.C * m.p * m.p, m.D);
    for (int l = 0; l < m.Dl; ++l) {
      for (int i = 0; i < 4; ++i) g.forward(B * m.Lv, m.D, m.D);
      g.forward(B * m.Lv, m.D, m.Di);
      g.forward(B * m.Lv, m.Di, m.D);
    }
    // The projector over the shuffled tokens; its input needs no gradient, except after the MLP
    // projector's own (trainable) layernorm.
    const double rows_p = B * m.n_img;
    if (m.mlp_projector) {
      g.trained(rows_p, m.proj_in, m.H);
      g.trained(rows_p, m.H, m.H);
    } else {
      g.forward(rows_p, m.proj_in, m.H);
      g.weight_grad(rows_p, m.proj_in, m.H);
    }
    for (int l = 0; l < m.L; ++l)
      for (const auto& [in, out] : llm_linears(m)) g.trained(N, in, out);
    g.trained(M, m.H, m.V);  // the tied head, supervised rows only
    const Kernel gemm = kernel(p, "gemm");
    EXPECT_EQ(gemm.launches, g.n);
    EXPECT_DOUBLE_EQ(gemm.flops, g.flops);
    EXPECT_DOUBLE_EQ(gemm.bytes, g.bytes);

    // Attention: the tower's over all its tokens (forward), the LLM's causal (both ways).
    const double hd = m.D / m.heads, pv = B * m.heads * m.Lv * m.Lv;
    const double pl = B * m.Hq * T * (T + 1) / 2;
    const double q = N * m.Hq * m.d, kv = N * m.Hkv * m.d, lse = 4 * B * m.Hq * T;
    const double vision_io = 4 * B * m.Lv * m.D * kE + 4 * B * m.heads * m.Lv;
    const Kernel af = kernel(p, "flash_attention_forward"),
                 ab = kernel(p, "flash_attention_backward");
    EXPECT_EQ(af.launches, m.Dl + m.L);
    EXPECT_DOUBLE_EQ(af.flops, m.Dl * 4 * hd * pv + m.L * 4 * m.d * pl);
    EXPECT_DOUBLE_EQ(af.bytes, m.Dl * vision_io + m.L * ((2 * q + 2 * kv) * kE + lse));
    EXPECT_EQ(ab.launches, m.L);
    EXPECT_DOUBLE_EQ(ab.flops, m.L * 10 * m.d * pl);
    EXPECT_DOUBLE_EQ(ab.bytes, m.L * ((4 * q + 4 * kv) * kE + 3 * lse));

    // The loss over the supervised rows; AdamW over the trainables (LLM and projector) with fp32
    // master weights: master and both moments read and written, the bf16 parameter written, its
    // f32 gradient read (a bf16 parameter accumulates its gradient in f32).
    EXPECT_DOUBLE_EQ(kernel(p, "cross_entropy_forward_backward").bytes, 2 * M * m.V * kE + 8 * M);
    double params = m.V * m.H + m.H;  // tied embedding, final norm
    for (int l = 0; l < m.L; ++l) {
      params += 2 * m.H + (m.qk_norm ? 2 * m.d : 0);
      for (const auto& [in, out] : llm_linears(m)) params += in * out;
    }
    params += m.mlp_projector ? 2 * m.proj_in + m.proj_in * m.H + m.H + m.H * m.H + m.H
                              : m.proj_in * m.H + (m.proj_bias ? m.H : 0);
    EXPECT_DOUBLE_EQ(kernel(p, "adamw_update").bytes, params * (8 + kE + 4 + 16));
  }
}

TEST(CostTable, DecodeRowsMatchHandCount) {
  const double context = 1024, Tk = context + 1, chunks = std::ceil(Tk / 128);
  for (const std::string name : {"minimind2-small-v", "minimind3-v", "smolvlm-256m"}) {
    const Model m = load(name);
    for (const double B : {1.0, 8.0}) {
      SCOPED_TRACE(name + " batch " + std::to_string(static_cast<int>(B)));
      const json p = predict(
          name, "--what generate --prompt 1024 --batch " + std::to_string(static_cast<int>(B)));
      Gemms g;
      for (int l = 0; l < m.L; ++l)
        for (const auto& [in, out] : llm_linears(m)) g.forward(B, in, out);
      g.forward(B, m.H, m.V);
      const Kernel gemm = kernel(p, "gemm");
      EXPECT_EQ(gemm.launches, g.n);
      EXPECT_DOUBLE_EQ(gemm.flops, g.flops);
      EXPECT_DOUBLE_EQ(gemm.bytes, g.bytes);
      // Every query head reads the whole cache of its kv head; the split keys' partial results
      // (m, l, acc[d]) are written and read back by the combine.
      const Kernel a = kernel(p, "flash_attention_decode");
      EXPECT_EQ(a.launches, m.L);
      EXPECT_DOUBLE_EQ(a.flops, m.L * 4 * m.d * B * m.Hq * Tk);
      EXPECT_DOUBLE_EQ(a.bytes, m.L * ((2 * B * m.Hq * m.d + 2 * B * Tk * m.Hkv * m.d) * kE +
                                       4 * B * m.Hq + 8 * B * m.Hq * chunks * (m.d + 2)));
      EXPECT_GT(p["step_seconds"].get<double>(), 0);
    }
  }
}

}  // namespace
}  // namespace minivlm
