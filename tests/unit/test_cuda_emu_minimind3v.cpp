// The minimind-3v family on the CUDA back-end (cuda-emu) against the CPU back-end, on
// tests/fixtures/test-model-3v.json (a SigLIP tower, the MLP projector, MoE layers with top-2
// routing and a router loss): the tower's features, the loss with the router loss, every
// trainable gradient (the router's and each expert's included) and AdamW steps in fp32.
#include <gtest/gtest.h>

#include <fstream>
#include <vector>

#include "autograd/node.h"
#include "device_test_util.h"
#include "dist/communicator.h"
#include "nn/vlm.h"
#include "optim/adamw.h"
#include "train/step.h"
#include "vlm_fixture.h"

namespace minivlm {
namespace {

using testing::kEmu;
using testing::kImageToken;
using testing::make_batch;
using testing::rel_error;

ModelConfig config_3v() {
  std::ifstream f(MINIVLM_SOURCE_DIR "/tests/fixtures/test-model-3v.json");
  EXPECT_TRUE(f) << "tests/fixtures/test-model-3v.json";
  return ModelConfig::from_json(nlohmann::json::parse(f), "test-model-3v.json");
}

struct Trained {
  std::unique_ptr<MiniMindVLM> model;
  std::unique_ptr<AdamW> optim;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<TrainStep> step;
};

Trained make_model(const ModelConfig& c, Device device) {
  Trained t;
  t.model = std::make_unique<MiniMindVLM>(c, kImageToken);
  t.model->init(11);
  // Router weights large enough that tokens spread over the experts.
  for (NamedTensor& p : t.model->params()) {
    if (p.name.find("mlp.gate.weight") != std::string::npos) {
      Rng rng(std::hash<std::string>{}(p.name));
      init_normal(p.tensor, rng, 0.5);
    }
    p.tensor.set_requires_grad(p.name.rfind("vision_encoder.", 0) != 0);
  }
  t.optim = std::make_unique<AdamW>(t.model->trainable_params(), AdamWConfig{});
  if (!device.is_cpu()) {
    t.optim->to(device, DType::f32);
    for (NamedTensor& p : t.model->params())
      if (!p.tensor.requires_grad()) p.tensor.set_data(p.tensor.detach().to(device));
  }
  t.comm = make_single_communicator();
  t.step = std::make_unique<TrainStep>(*t.model, *t.optim, *t.comm, 1.0);
  return t;
}

TEST(CudaEmuMinimind3v, SiglipFeaturesMatchCpu) {
  const ModelConfig c = config_3v();
  Trained cpu = make_model(c, kCPU), emu = make_model(c, kEmu);
  Rng rng(3);
  const Tensor pixels =
      testing::randn(rng, {2, 3, c.vision.image_size, c.vision.image_size}, DType::f32);
  const Tensor fc = cpu.model->vision->features(pixels), fe = emu.model->vision->features(pixels);
  ASSERT_EQ(fe.device(), kEmu);
  EXPECT_EQ(fc.shape(), (Shape{2, c.vision.grid() * c.vision.grid(), c.vision.hidden_size}));
  EXPECT_LE(rel_error(fe, fc), 1e-5);
  const Tensor rc = cpu.model->image_rows(pixels), re = emu.model->image_rows(pixels);
  EXPECT_LE(rel_error(re, rc), 1e-5);
}

TEST(CudaEmuMinimind3v, LossRouterLossAndEveryTrainableGradientMatchCpu) {
  const ModelConfig c = config_3v();
  const VlmBatch batch = make_batch(c);
  Trained cpu = make_model(c, kCPU), emu = make_model(c, kEmu);
  const VlmOutput oc = cpu.model->forward(batch), oe = emu.model->forward(batch);
  ASSERT_TRUE(oc.aux_loss.defined());
  ASSERT_TRUE(oe.aux_loss.defined());
  EXPECT_LE(rel_error(oe.logits, oc.logits), 1e-5);
  EXPECT_NEAR(oe.loss.item(), oc.loss.item(), 1e-5 * oc.loss.item());
  EXPECT_NEAR(oe.aux_loss.item(), oc.aux_loss.item(), 1e-5 * oc.aux_loss.item());
  // Balanced routing gives coef · k (Σ_e load_e = k, mean probabilities 1/E); any routing stays
  // within (0, coef · E · k].
  EXPECT_GT(oc.aux_loss.item(), 0.0);
  EXPECT_LE(oc.aux_loss.item(), c.llm.router_aux_loss_coef * c.llm.num_experts * 2);
  ops::add(oc.loss, oc.aux_loss).backward();
  ops::add(oe.loss, oe.aux_loss).backward();
  const ParamList pc = cpu.model->trainable_params(), pe = emu.model->trainable_params();
  ASSERT_EQ(pc.size(), pe.size());
  int routers = 0, experts_with_grad = 0;
  for (size_t i = 0; i < pc.size(); ++i) {
    ASSERT_EQ(pc[i].tensor.grad().defined(), pe[i].tensor.grad().defined()) << pc[i].name;
    if (!pc[i].tensor.grad().defined()) continue;  // an expert no token chose
    EXPECT_LE(rel_error(pe[i].tensor.grad(), pc[i].tensor.grad()), 1e-4) << pe[i].name;
    routers += pc[i].name.find("mlp.gate.weight") != std::string::npos;
    experts_with_grad += pc[i].name.find("mlp.experts.") != std::string::npos;
  }
  EXPECT_EQ(routers, c.llm.num_hidden_layers);
  EXPECT_GE(experts_with_grad, 3 * 2 * c.llm.num_hidden_layers);  // ≥ 2 experts used per layer
}

TEST(CudaEmuMinimind3v, AdamWStepsMatchCpuAndEveryParameterGetsAGradient) {
  const ModelConfig c = config_3v();
  const VlmBatch batch = make_batch(c);
  Trained cpu = make_model(c, kCPU), emu = make_model(c, kEmu);
  for (int step = 0; step < 3; ++step) {
    const MicroInput micro[] = {{&batch, batch.supervised_tokens()}};
    const StepResult rc = cpu.step->forward_backward_and_reduce(micro);
    const StepResult re = emu.step->forward_backward_and_reduce(micro);
    // After the reduction every trainable parameter has a gradient (zero for an unused expert).
    for (const NamedTensor& p : cpu.model->trainable_params())
      ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
    EXPECT_GT(rc.aux_loss, 0.0);
    EXPECT_NEAR(re.loss, rc.loss, 1e-5 * rc.loss) << "step " << step;
    EXPECT_NEAR(re.aux_loss, rc.aux_loss, 1e-5 * rc.aux_loss) << "step " << step;
    StepResult fc = rc, fe = re;
    fc.grad_norm = cpu.step->grad_norm();
    fe.grad_norm = emu.step->grad_norm();
    EXPECT_NEAR(fe.grad_norm, fc.grad_norm, 1e-4 * fc.grad_norm) << "step " << step;
    EXPECT_TRUE(cpu.step->update(fc, 3e-3));
    EXPECT_TRUE(emu.step->update(fe, 3e-3));
  }
  // AdamW divides each element's gradient by its own running RMS, so the summation-order noise of
  // an expert's near-zero gradient elements (an expert sees a few tokens) becomes update noise:
  // 1e-3 of the weights' scale after three steps (the dense tower test holds 1e-4).
  const ParamList pc = cpu.model->trainable_params(), pe = emu.model->trainable_params();
  for (size_t i = 0; i < pc.size(); ++i)
    EXPECT_LE(rel_error(pe[i].tensor, pc[i].tensor), 1e-3) << pe[i].name;
}

}  // namespace
}  // namespace minivlm
