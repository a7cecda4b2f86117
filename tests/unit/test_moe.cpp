// MiniMind-3's mixture-of-experts feed-forward (nn/llm.h moe_forward) against float64 goldens of
// an independent PyTorch implementation checked against MiniMind's own MOEFeedForward
// (tests/goldens/moe, scripts/reference/make_moe_goldens.py): the routing, the output, the router
// loss and the gradient of Σ y·r + aux with respect to x, the router and every expert weight, for
// top-1 and top-2 routing with and without renormalised weights. An expert no token chose gets no
// gradient from the layer, and a zero one from the training step.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "autograd/node.h"
#include "dist/communicator.h"
#include "io/safetensors.h"
#include "nn/llm.h"
#include "ops/ops.h"
#include "vlm_fixture.h"

namespace minivlm {
namespace {

const std::string kDir = MINIVLM_SOURCE_DIR "/tests/goldens/moe/";

using testing::rel_error;

struct Case {
  LlmConfig config;
  Tensor x, r, router;
  std::vector<SwigluMlp> experts;
  SafeTensorsFile file;
};

Tensor leaf(const SafeTensorsFile& f, const std::string& name) {
  Tensor t = f.get(name).to(DType::f64).clone();
  t.set_requires_grad(true);
  return t;
}

Case load_case(const std::string& name) {
  Case c{LlmConfig{}, {}, {}, {}, {}, SafeTensorsFile::open(kDir + name + ".safetensors")};
  const auto& meta = c.file.metadata();
  c.config.use_moe = true;
  c.config.num_experts_per_tok = std::stoll(meta.at("top_k"));
  c.config.norm_topk_prob = meta.at("norm_topk_prob") == "true" ||
                            meta.at("norm_topk_prob") == "True" || meta.at("norm_topk_prob") == "1";
  c.config.router_aux_loss_coef = std::stod(meta.at("aux_coef"));
  c.x = leaf(c.file, "x");
  c.r = c.file.get("r").to(DType::f64);
  c.router = leaf(c.file, "router");
  c.config.num_experts = c.router.size(0);
  c.config.hidden_size = c.x.size(1);
  for (int64_t e = 0; e < c.config.num_experts; ++e) {
    SwigluMlp m;
    const std::string p = "experts." + std::to_string(e) + ".";
    m.gate_proj = leaf(c.file, p + "gate");
    m.up_proj = leaf(c.file, p + "up");
    m.down_proj = leaf(c.file, p + "down");
    c.experts.push_back(m);
  }
  c.config.moe_intermediate_size = c.experts[0].gate_proj.size(0);
  return c;
}

class MoeGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(MoeGolden, OutputRouterLossAndGradientsMatchFloat64Reference) {
  Case c = load_case(GetParam());
  Tensor aux;
  const Tensor y = moe_forward(c.config, c.x, c.router, c.experts, &aux);
  ASSERT_TRUE(aux.defined());
  EXPECT_LE(rel_error(y, c.file.get("y")), 1e-12);
  const double want_aux = c.file.get("aux").to_double_vector().at(0);  // stored as [1]
  EXPECT_NEAR(aux.item(), want_aux, 1e-12 * std::abs(want_aux));
  ops::add(ops::sum(ops::mul(y, c.r)), aux).backward();
  EXPECT_LE(rel_error(c.x.grad(), c.file.get("grad.x")), 1e-10);
  EXPECT_LE(rel_error(c.router.grad(), c.file.get("grad.router")), 1e-10);
  // Which experts the golden routed tokens to ([N, k], descending probability).
  const std::vector<int64_t> topk = c.file.get("topk_idx").to_int_vector();
  const std::set<int64_t> used(topk.begin(), topk.end());
  if (GetParam() != "top2_nonorm") {
    EXPECT_LT(used.size(), 4u) << "the case should idle an expert";
  }
  for (int64_t e = 0; e < c.config.num_experts; ++e) {
    const std::string p = "grad.experts." + std::to_string(e) + ".";
    const SwigluMlp& m = c.experts[e];
    const std::pair<const Tensor*, const char*> ws[] = {
        {&m.gate_proj, "gate"}, {&m.up_proj, "up"}, {&m.down_proj, "down"}};
    for (const auto& [w, n] : ws) {
      const Tensor want = c.file.get(p + n);
      if (!used.count(e)) {
        // Unused: no gradient at all from the layer; the golden's is exactly zero.
        EXPECT_FALSE(w->grad().defined()) << p << n;
        for (double v : want.to_double_vector()) EXPECT_EQ(v, 0.0) << p << n;
        continue;
      }
      ASSERT_TRUE(w->grad().defined()) << p << n;
      EXPECT_LE(rel_error(w->grad(), want), 1e-10) << p << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, MoeGolden, ::testing::Values("top1", "top2", "top2_nonorm"));

TEST(Moe, WithoutAuxPointerNoRouterLossAndSameOutput) {
  Case c = load_case("top2");
  Tensor aux;
  const Tensor with = moe_forward(c.config, c.x, c.router, c.experts, &aux);
  const Tensor without = moe_forward(c.config, c.x, c.router, c.experts, nullptr);
  EXPECT_EQ(with.to_double_vector(), without.to_double_vector());
}

}  // namespace
}  // namespace minivlm
