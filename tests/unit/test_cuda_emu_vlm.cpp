// The whole VLM of tests/fixtures/test-model.json (vision tower, pixel shuffle, projector, image
// rows merged into the token embeddings, decoder, masked loss) trained on the CUDA back-end
// (cuda-emu) against the CPU back-end: loss, every trainable gradient, the vision tower's own
// backward, and training steps (train/step.h: AdamW with clipping) in fp32; and the bf16
// mixed-precision path (bf16 parameters and activations, fp32 master weights, moments, loss and
// norms) within bf16 tolerances of the fp32 CPU run.
#include <gtest/gtest.h>

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

using testing::fixture_config;
using testing::kEmu;
using testing::kImageToken;
using testing::make_batch;
using testing::rel_error;

// A model trained like train_sft --train all: LLM and projector trainable, the tower frozen.
struct Trained {
  std::unique_ptr<MiniMindVLM> model;
  std::unique_ptr<AdamW> optim;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<TrainStep> step;  // clipping at 1
};

Trained make_model(const ModelConfig& c, Device device, DType dtype) {
  Trained t;
  t.model = std::make_unique<MiniMindVLM>(c, kImageToken);
  t.model->init(5);
  for (NamedTensor& p : t.model->params())
    p.tensor.set_requires_grad(p.name.rfind("vision_encoder.", 0) != 0);
  t.optim = std::make_unique<AdamW>(t.model->trainable_params(), AdamWConfig{});
  if (!device.is_cpu()) {
    t.optim->to(device, dtype);
    for (NamedTensor& p : t.model->params())
      if (!p.tensor.requires_grad()) p.tensor.set_data(p.tensor.detach().to(device).to(dtype));
  }
  t.comm = make_single_communicator();
  t.step = std::make_unique<TrainStep>(*t.model, *t.optim, *t.comm, 1.0);
  return t;
}

StepResult train_step(Trained& t, const VlmBatch& batch, double lr) {
  const MicroInput micro[] = {{&batch, batch.supervised_tokens()}};
  const StepResult r = t.step->run(micro, lr);
  EXPECT_TRUE(r.applied);
  return r;
}

TEST(CudaEmuVlm, LossAndEveryTrainableGradientMatchCpu) {
  const ModelConfig c = fixture_config();
  const VlmBatch batch = make_batch(c);
  Trained cpu = make_model(c, kCPU, DType::f32), emu = make_model(c, kEmu, DType::f32);
  const VlmOutput oc = cpu.model->forward(batch), oe = emu.model->forward(batch);
  ASSERT_EQ(oe.logits.device(), kEmu);
  EXPECT_LE(rel_error(oe.logits, oc.logits), 1e-5);
  EXPECT_NEAR(oe.loss.item(), oc.loss.item(), 1e-5 * oc.loss.item());
  oc.loss.backward();
  oe.loss.backward();
  const ParamList pc = cpu.model->trainable_params(), pe = emu.model->trainable_params();
  ASSERT_EQ(pc.size(), pe.size());
  ASSERT_EQ(pc.size(), 3 + c.llm.num_hidden_layers * 9u);  // embed, norm, projector, layers
  double worst = 0;
  for (size_t i = 0; i < pc.size(); ++i) {
    ASSERT_TRUE(pe[i].tensor.grad().defined()) << pe[i].name;
    EXPECT_EQ(pe[i].tensor.grad().device(), kEmu) << pe[i].name;
    const double e = rel_error(pe[i].tensor.grad(), pc[i].tensor.grad());
    worst = std::max(worst, e);
    EXPECT_LE(e, 1e-4) << pe[i].name;
  }
  std::printf("fp32 cuda-emu vs cpu: loss %.9g vs %.9g, worst gradient error %.3g of scale\n",
              oe.loss.item(), oc.loss.item(), worst);
}

// The frozen tower's own backward on the device (train never needs it; the ops must have it).
TEST(CudaEmuVlm, VisionTowerBackwardMatchesCpu) {
  const ModelConfig c = fixture_config();
  MiniMindVLM cpu(c, kImageToken), emu(c, kImageToken);
  cpu.init(9);
  emu.init(9);
  ParamList vc, ve;
  cpu.vision->params(vc);
  emu.vision->params(ve);
  for (NamedTensor& p : vc) p.tensor.set_requires_grad(true);
  for (NamedTensor& p : ve) {
    p.tensor.set_data(p.tensor.detach().to(kEmu));
    p.tensor.set_requires_grad(true);
  }
  Rng rng(3);
  const Tensor pixels =
      testing::randn(rng, {2, 3, c.vision.image_size, c.vision.image_size}, DType::f32);
  const Tensor fc = cpu.vision->forward(pixels), fe = emu.vision->forward(pixels);
  EXPECT_LE(rel_error(fe, fc), 1e-5);
  const Tensor g = testing::randn(rng, fc.shape(), DType::f32);
  fc.backward(g);
  fe.backward(g.to(kEmu));
  double scale = 0;  // the largest gradient element of the tower
  for (const NamedTensor& p : vc)
    if (p.tensor.grad().defined())
      for (double v : p.tensor.grad().to_double_vector()) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < vc.size(); ++i) {
    if (vc[i].name.find("post_layernorm") != std::string::npos) continue;  // unused (SPEC §1.3)
    ASSERT_TRUE(ve[i].tensor.grad().defined()) << ve[i].name;
    if (vc[i].name.find("k_proj.bias") != std::string::npos) {
      // Zero in exact arithmetic (softmax ignores a constant per query): rounding noise only.
      for (const Tensor& g : {ve[i].tensor.grad(), vc[i].tensor.grad()})
        for (double v : g.to_double_vector()) EXPECT_LE(std::abs(v), 1e-5 * scale) << vc[i].name;
      continue;
    }
    EXPECT_LE(rel_error(ve[i].tensor.grad(), vc[i].tensor.grad()), 1e-4) << ve[i].name;
  }
}

TEST(CudaEmuVlm, AdamWStepsWithClippingMatchCpu) {
  const ModelConfig c = fixture_config();
  const VlmBatch batch = make_batch(c);
  Trained cpu = make_model(c, kCPU, DType::f32), emu = make_model(c, kEmu, DType::f32);
  for (int step = 0; step < 3; ++step) {
    const StepResult rc = train_step(cpu, batch, 3e-3), re = train_step(emu, batch, 3e-3);
    EXPECT_NEAR(re.loss, rc.loss, 1e-5 * rc.loss) << "step " << step;
    EXPECT_NEAR(re.grad_norm, rc.grad_norm, 1e-4 * rc.grad_norm) << "step " << step;
  }
  const ParamList pc = cpu.model->trainable_params(), pe = emu.model->trainable_params();
  for (size_t i = 0; i < pc.size(); ++i)
    EXPECT_LE(rel_error(pe[i].tensor, pc[i].tensor), 1e-4) << pe[i].name;
}

// bf16 storage: 8 significant bits per value, so each element carries a relative rounding error
// up to 2^-9 and errors compound through the layers. Tolerances, relative to the scale of the
// fp32 CPU result: loss 1%, gradient norm 3%, each gradient tensor 10% of its largest element,
// and after three steps the fp32 master weights within 2% of the CPU weights' scale.
TEST(CudaEmuVlm, Bf16MixedPrecisionStaysWithinBf16TolerancesOfFp32Cpu) {
  const ModelConfig c = fixture_config();
  const VlmBatch batch = make_batch(c);
  Trained cpu = make_model(c, kCPU, DType::f32), half = make_model(c, kEmu, DType::bf16);
  {
    const VlmOutput oc = cpu.model->forward(batch), oh = half.model->forward(batch);
    EXPECT_EQ(oh.logits.dtype(), DType::bf16);
    EXPECT_EQ(oh.loss.dtype(), DType::f32);
    EXPECT_NEAR(oh.loss.item(), oc.loss.item(), 1e-2 * oc.loss.item());
    oc.loss.backward();
    oh.loss.backward();
    const ParamList pc = cpu.model->trainable_params(), ph = half.model->trainable_params();
    double worst = 0;
    for (size_t i = 0; i < pc.size(); ++i) {
      EXPECT_EQ(ph[i].tensor.grad().dtype(), DType::f32) << ph[i].name;  // grad_dtype(bf16)
      const double e = rel_error(ph[i].tensor.grad(), pc[i].tensor.grad());
      worst = std::max(worst, e);
      EXPECT_LE(e, 0.1) << ph[i].name;
    }
    const double nc = grad_norm(pc), nh = grad_norm(ph);
    EXPECT_NEAR(nh, nc, 3e-2 * nc);
    std::printf(
        "bf16 cuda-emu vs fp32 cpu: loss %.6g vs %.6g, grad norm %.6g vs %.6g, worst "
        "gradient error %.3g of scale\n",
        oh.loss.item(), oc.loss.item(), nh, nc, worst);
    cpu.optim->zero_grad();
    half.optim->zero_grad();
  }
  const ParamList pc = cpu.model->trainable_params();
  std::vector<Tensor> start;
  for (const NamedTensor& p : pc) start.push_back(p.tensor.clone());
  for (int step = 0; step < 3; ++step) {
    const StepResult rc = train_step(cpu, batch, 3e-3), rh = train_step(half, batch, 3e-3);
    EXPECT_NEAR(rh.loss, rc.loss, 1e-2 * rc.loss) << "step " << step;
  }
  // The updates the fp32 masters received against the CPU's: ‖Δmaster − Δcpu‖ / ‖Δcpu‖.
  double diff = 0, ref = 0;
  for (size_t i = 0; i < pc.size(); ++i) {
    EXPECT_EQ(half.optim->master(i).dtype(), DType::f32);
    const std::vector<double> m = half.optim->master(i).to_double_vector(),
                              w = pc[i].tensor.to_double_vector(), w0 = start[i].to_double_vector();
    for (size_t j = 0; j < w.size(); ++j) {
      diff += (m[j] - w[j]) * (m[j] - w[j]);
      ref += (w[j] - w0[j]) * (w[j] - w0[j]);
    }
  }
  std::printf("bf16 vs fp32 updates after 3 steps: %.4g relative\n", std::sqrt(diff / ref));
  EXPECT_LE(std::sqrt(diff / ref), 0.1);
}

}  // namespace
}  // namespace minivlm
