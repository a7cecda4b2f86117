// The language model of tests/fixtures/test-model.json run through the CUDA back-end's host code
// and kernels on cuda-emu: logits, loss and every parameter gradient equal the CPU back-end's.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/rng.h"
#include "device_test_util.h"
#include "nn/config.h"
#include "nn/llm.h"
#include "ops/ops.h"

namespace minivlm {
namespace {

using testing::kEmu;

void for_each_param(MiniMindLM& m, const std::function<void(Tensor&)>& f) {
  for (Tensor* t : {&m.embed_tokens, &m.final_norm, &m.lm_head})
    if (t->defined()) f(*t);
  for (DecoderLayer& l : m.layers) {
    for (Tensor* t : {&l.input_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.q_norm,
                      &l.k_norm, &l.post_norm, &l.gate_proj, &l.up_proj, &l.down_proj})
      if (t->defined()) f(*t);
  }
}

// The test model's LM initialised from `seed` on the CPU and its copy on cuda-emu, every
// parameter requiring grad on both.
struct LmPair {
  LlmConfig config;
  std::unique_ptr<MiniMindLM> cpu, emu;
};
LmPair lm_pair(uint64_t seed) {
  std::ifstream f(MINIVLM_SOURCE_DIR "/tests/fixtures/test-model.json");
  EXPECT_TRUE(f) << "tests/fixtures/test-model.json";
  LmPair p;
  p.config = ModelConfig::from_json(nlohmann::json::parse(f), "test-model.json").llm;
  p.cpu = std::make_unique<MiniMindLM>(p.config);
  Rng rng(seed);
  p.cpu->init(rng);
  p.emu = std::make_unique<MiniMindLM>(*p.cpu);
  for_each_param(*p.cpu, [](Tensor& t) { t.set_requires_grad(true); });
  for_each_param(*p.emu, [](Tensor& t) {
    t = t.detach().to(kEmu);
    t.set_requires_grad(true);
  });
  return p;
}

// max |got − want| ≤ tol · max |want|
void expect_close(const Tensor& got, const Tensor& want, double tol, const char* what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> a = got.to_double_vector(), b = want.to_double_vector();
  double scale = 0, err = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    scale = std::max(scale, std::abs(b[i]));
    err = std::max(err, std::abs(a[i] - b[i]));
  }
  EXPECT_LE(err, tol * scale) << what << ": max error " << err << " at scale " << scale;
}

// Backward through both losses; every parameter gradient on cuda-emu equals the CPU's.
void expect_same_gradients(const Tensor& loss_cpu, const Tensor& loss_emu, MiniMindLM& cpu,
                           MiniMindLM& emu) {
  loss_cpu.backward();
  loss_emu.backward();
  std::vector<Tensor> grads_cpu, grads_emu;
  for_each_param(cpu, [&](Tensor& t) { grads_cpu.push_back(t.grad()); });
  for_each_param(emu, [&](Tensor& t) { grads_emu.push_back(t.grad()); });
  ASSERT_EQ(grads_cpu.size(), grads_emu.size());
  for (size_t i = 0; i < grads_cpu.size(); ++i) {
    ASSERT_TRUE(grads_emu[i].defined()) << "parameter " << i;
    EXPECT_EQ(grads_emu[i].device(), kEmu);
    expect_close(grads_emu[i], grads_cpu[i], 1e-4,
                 ("gradient of parameter " + std::to_string(i)).c_str());
  }
}

TEST(CudaEmuModel, ForwardLossAndGradientsMatchCpu) {
  const LmPair lms = lm_pair(1234);
  const LlmConfig& c = lms.config;
  MiniMindLM &cpu = *lms.cpu, &emu = *lms.emu;

  const int64_t B = 2, T = 5;
  const Tensor ids =
      Tensor::from_vector(std::vector<int64_t>{5, 17, 900, 3, 6399, 42, 42, 0, 1000, 77}, {B, T});
  const Tensor targets = Tensor::from_vector(
      std::vector<int64_t>{17, 900, 3, 6399, -100, 42, 0, 1000, 77, -100}, {B * T});
  const auto run = [&](const MiniMindLM& m, const Tensor& x) {
    const Tensor logits = m.logits(m.forward_hidden(m.embed(x)));
    return std::pair{logits, ops::cross_entropy(logits.reshape({B * T, c.vocab_size}), targets)};
  };
  const auto [logits_cpu, loss_cpu] = run(cpu, ids);
  const auto [logits_emu, loss_emu] = run(emu, ids.to(kEmu));
  ASSERT_EQ(logits_emu.device(), kEmu);
  expect_close(logits_emu, logits_cpu, 1e-5, "logits");
  EXPECT_NEAR(loss_emu.item(), loss_cpu.item(), 1e-5 * loss_cpu.item());

  expect_same_gradients(loss_cpu, loss_emu, cpu, emu);
}

// Packed rows (several samples per row, SPEC §4.2) take RoPE at per-sample positions and the
// variable-length attention kernels: logits, loss and gradients on cuda-emu equal the CPU's.
TEST(CudaEmuModel, PackedRowsMatchCpu) {
  const LmPair lms = lm_pair(99);
  const LlmConfig& c = lms.config;
  MiniMindLM &cpu = *lms.cpu, &emu = *lms.emu;
  // Row 0: samples of 7, 30 and 20 tokens, then padding; row 1: 33 and 30 (the boundary inside
  // the second 32-row tile).
  const int64_t B = 2, T = 70;
  const PackedRows packed = PackedRows::from_bounds({{0, 7, 37, 57}, {0, 33, 63}}, T);
  std::vector<int64_t> idv, tv;
  Rng rng(100);
  for (int64_t i = 0; i < B * T; ++i) {
    idv.push_back(static_cast<int64_t>(rng.next_u64() % 6400));
    tv.push_back(i % 5 == 4 ? -100 : static_cast<int64_t>(rng.next_u64() % 6400));
  }
  const Tensor ids = Tensor::from_vector(idv, {B, T}), targets = Tensor::from_vector(tv, {B * T});
  const auto run = [&](const MiniMindLM& m, const Tensor& x) {
    const Tensor logits = m.logits(m.forward_hidden(m.embed(x), 0, nullptr, nullptr, &packed));
    return std::pair{logits, ops::cross_entropy(logits.reshape({B * T, c.vocab_size}), targets)};
  };
  const auto [logits_cpu, loss_cpu] = run(cpu, ids);
  const auto [logits_emu, loss_emu] = run(emu, ids.to(kEmu));
  expect_close(logits_emu, logits_cpu, 1e-5, "logits");
  EXPECT_NEAR(loss_emu.item(), loss_cpu.item(), 1e-5 * loss_cpu.item());
  expect_same_gradients(loss_cpu, loss_emu, cpu, emu);
}

}  // namespace
}  // namespace minivlm
