// The library's training step (train/step.h) on the fixture VLM: the loss of a step is the mean
// over all its supervised tokens (SPEC §4.2) whatever its split into micro-batches, the token
// count is the sum over ranks, and a non-finite loss skips the step without touching weights or
// optimizer state.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "dist/communicator.h"
#include "optim/adamw.h"
#include "device_test_util.h"
#include "ops/ops.h"
#include "train/step.h"
#include "vlm_fixture.h"

namespace minivlm {
namespace {

using testing::fixture_config;
using testing::kEmu;
using testing::kImageToken;
using testing::make_batch;
using testing::rel_error;

// The fixture model trained like train_sft --train all (LLM and projector; the tower frozen),
// stepping over `comm` with clipping at 1.
struct Trainee {
  Trainee(const ModelConfig& c, Communicator& comm) : model(c, kImageToken) {
    model.init(5);
    for (NamedTensor& p : model.params())
      p.tensor.set_requires_grad(p.name.rfind("vision_encoder.", 0) != 0);
    optim = std::make_unique<AdamW>(model.trainable_params(), AdamWConfig{});
    step = std::make_unique<TrainStep>(model, *optim, comm, 1.0);
  }
  MiniMindVLM model;
  std::unique_ptr<AdamW> optim;
  std::unique_ptr<TrainStep> step;
};

MicroInput input(const VlmBatch& b) { return {&b, b.supervised_tokens()}; }

// Samples [b, b + n) of `batch` with their images.
VlmBatch samples(const VlmBatch& batch, int64_t b, int64_t n) {
  const auto& per = batch.images_per_sample;
  int64_t first = 0, count = 0;
  for (int64_t i = 0; i < b + n; ++i) (i < b ? first : count) += per[static_cast<size_t>(i)];
  VlmBatch out;
  out.ids = batch.ids.narrow(0, b, n).contiguous();
  out.label_mask = batch.label_mask.narrow(0, b, n).contiguous();
  out.pixels = batch.pixels.narrow(0, first, count).contiguous();
  out.images_per_sample.assign(per.begin() + b, per.begin() + b + n);
  return out;
}

std::vector<std::vector<float>> values(const std::vector<Tensor>& ts) {
  std::vector<std::vector<float>> out;
  for (const Tensor& t : ts) out.push_back(t.to_float_vector());
  return out;
}

std::vector<Tensor> weights(const AdamW& optim) {
  std::vector<Tensor> out;
  for (const NamedTensor& p : optim.params()) out.push_back(p.tensor);
  return out;
}

std::vector<Tensor> moments(const AdamW& optim) {
  std::vector<Tensor> out;
  for (const auto& [name, t] : optim.state_tensors()) out.push_back(t);
  return out;
}

// Rank 0 of two ranks whose other rank holds the same micro-batches: every sum over ranks is twice
// this rank's value.
class MirroredPair final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  std::string name() const override { return "mirrored-pair"; }
  void all_reduce_sum(const std::vector<Tensor>& tensors) override {
    for (Tensor t : tensors) {
      std::vector<float> v = t.to_float_vector();
      for (float& x : v) x *= 2;
      t.copy_(Tensor::from_vector(v, t.shape()));
    }
  }
  void all_reduce_sum(std::vector<double>& xs) override {
    for (double& x : xs) x *= 2;
  }
  void broadcast(const std::vector<Tensor>&, int) override {}
  void broadcast(std::string&, int) override {}
  std::vector<std::string> all_gather(const std::string& text) override { return {text, text}; }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    std::abort();
  }
};

// Every micro-batch's summed loss is divided by the step's token count, not its own: one sample
// per micro-batch (and an empty micro-batch, all of whose samples were bad, between them) gives
// the loss, the gradients and the updates of one micro-batch holding both samples, up to fp32
// rounding. The samples' token counts differ, so a mean of per-micro-batch means would not.
TEST(TrainStep, MicroBatchesOfAStepEqualOneBatchOfAllTheirSamples) {
  const ModelConfig c = fixture_config();
  const VlmBatch both = make_batch(c), first = samples(both, 0, 1), second = samples(both, 1, 1);
  ASSERT_NE(first.supervised_tokens(), second.supervised_tokens());
  const auto comm = make_single_communicator();
  Trainee whole(c, *comm), split(c, *comm);
  const MicroInput one[] = {input(both)}, three[] = {input(first), {}, input(second)};
  for (int step = 0; step < 3; ++step) {
    StepResult rw = whole.step->forward_backward_and_reduce(one);
    StepResult rs = split.step->forward_backward_and_reduce(three);
    EXPECT_EQ(rw.tokens, both.supervised_tokens());
    EXPECT_EQ(rs.tokens, rw.tokens);
    EXPECT_NEAR(rs.loss, rw.loss, 1e-5 * rw.loss) << "step " << step;
    const ParamList& pw = whole.optim->params();
    const ParamList& ps = split.optim->params();
    for (size_t i = 0; i < pw.size(); ++i)
      EXPECT_LE(rel_error(ps[i].tensor.grad(), pw[i].tensor.grad()), 1e-4)
          << pw[i].name << " step " << step;
    rw.grad_norm = whole.step->grad_norm();
    rs.grad_norm = split.step->grad_norm();
    EXPECT_NEAR(rs.grad_norm, rw.grad_norm, 1e-5 * rw.grad_norm) << "step " << step;
    EXPECT_TRUE(whole.step->update(rw, 1e-3));
    EXPECT_TRUE(split.step->update(rs, 1e-3));
  }
  const std::vector<Tensor> ww = weights(*whole.optim), ws = weights(*split.optim);
  for (size_t i = 0; i < ww.size(); ++i) EXPECT_LE(rel_error(ws[i], ww[i]), 1e-4);
}

// A NaN pixel makes the loss and every gradient NaN: the step reports itself skipped, and weights,
// moments and step count stay what the step before left, bit for bit; the next finite step
// applies.
TEST(TrainStep, NonFiniteLossLeavesWeightsAndOptimizerStateUntouched) {
  const ModelConfig c = fixture_config();
  const VlmBatch good = make_batch(c);
  VlmBatch bad = good;
  std::vector<float> px = good.pixels.to_float_vector();
  px[5] = std::numeric_limits<float>::quiet_NaN();
  bad.pixels = Tensor::from_vector(px, good.pixels.shape());
  const auto comm = make_single_communicator();
  Trainee t(c, *comm);
  const MicroInput good_in[] = {input(good)}, bad_in[] = {input(bad)};
  ASSERT_TRUE(t.step->run(good_in, 1e-3).applied);  // moments no longer zero
  const auto w0 = values(weights(*t.optim)), m0 = values(moments(*t.optim));

  const StepResult r = t.step->run(bad_in, 1e-3);
  EXPECT_FALSE(r.applied);
  EXPECT_TRUE(std::isnan(r.loss));
  EXPECT_EQ(r.tokens, good.supervised_tokens());
  EXPECT_EQ(t.optim->steps(), 1);
  EXPECT_EQ(values(weights(*t.optim)), w0);
  EXPECT_EQ(values(moments(*t.optim)), m0);
  for (const NamedTensor& p : t.optim->params()) EXPECT_FALSE(p.tensor.grad().defined()) << p.name;

  const StepResult next = t.step->run(good_in, 1e-3);
  EXPECT_TRUE(next.applied);
  EXPECT_TRUE(std::isfinite(next.loss));
  EXPECT_EQ(t.optim->steps(), 2);
  EXPECT_NE(values(weights(*t.optim)), w0);
}

// With a second rank holding the same samples the step counts twice the tokens, and its loss,
// gradient norm and updates equal one process's bit for bit: each rank's loss and gradients are
// exactly halved by the doubled count (a power of two), then doubled by the sum over ranks.
TEST(TrainStep, TokenCountAndLossDenominatorAreSummedOverRanks) {
  const ModelConfig c = fixture_config();
  const VlmBatch batch = make_batch(c);
  const MicroInput in[] = {input(batch)};
  MirroredPair pair;
  const auto single = make_single_communicator();
  Trainee two(c, pair), one(c, *single);
  for (int step = 0; step < 2; ++step) {  // the second with the gradient buckets learnt
    const StepResult r2 = two.step->run(in, 1e-3), r1 = one.step->run(in, 1e-3);
    EXPECT_EQ(r1.tokens, batch.supervised_tokens());
    EXPECT_EQ(r2.tokens, 2 * r1.tokens);
    EXPECT_EQ(r2.loss, r1.loss) << "step " << step;
    EXPECT_EQ(r2.grad_norm, r1.grad_norm) << "step " << step;
    EXPECT_TRUE(r2.applied);
  }
  EXPECT_EQ(values(weights(*two.optim)), values(weights(*one.optim)));
}

// A trainee set up as the trainer does it: parameters and optimizer on the CPU (where a resume
// loads its checkpoint), then moved to the run's device and dtype, then the step made.
struct Staged {
  explicit Staged(const ModelConfig& c) : model(c, kImageToken) {
    model.init(5);
    for (NamedTensor& p : model.params())
      p.tensor.set_requires_grad(p.name.rfind("vision_encoder.", 0) != 0);
    optim = std::make_unique<AdamW>(model.trainable_params(), AdamWConfig{});
  }
  // Steps over `over` (must outlive this) when given, else over a single process.
  void start(Device device, DType dtype, double clip = 1.0, Communicator* over = nullptr,
             size_t bucket_bytes = gradient_bucket_bytes()) {
    if (!device.is_cpu() || dtype != DType::f32) {
      optim->to(device, dtype);
      for (NamedTensor& p : model.params())
        if (!p.tensor.requires_grad()) p.tensor.set_data(p.tensor.detach().to(device).to(dtype));
    }
    comm = make_single_communicator();
    step = std::make_unique<TrainStep>(model, *optim, over != nullptr ? *over : *comm, clip,
                                       bucket_bytes);
  }
  // Everything an update may touch: stored parameters, fp32 masters, moments, step count.
  struct State {
    std::vector<std::vector<float>> params, masters, moments;
    int64_t steps = 0;
    bool operator==(const State&) const = default;
  };
  State state() const {
    State s;
    for (size_t i = 0; i < optim->params().size(); ++i) {
      s.params.push_back(optim->params()[i].tensor.to_float_vector());
      s.masters.push_back(optim->master(i).to_float_vector());
    }
    s.moments = values(moments(*optim));
    s.steps = optim->steps();
    return s;
  }
  MiniMindVLM model;
  std::unique_ptr<AdamW> optim;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<TrainStep> step;
};

VlmBatch with_nan_pixel(const VlmBatch& good) {
  VlmBatch bad = good;
  std::vector<float> px = good.pixels.to_float_vector();
  px[11] = std::numeric_limits<float>::quiet_NaN();
  bad.pixels = Tensor::from_vector(px, good.pixels.shape());
  return bad;
}

struct Precision {
  Device device;
  DType dtype;
  const char* name;
};
const Precision kPrecisions[] = {{kCPU, DType::f32, "cpu fp32"},
                                 {kCPU, DType::bf16, "cpu bf16"},
                                 {kEmu, DType::bf16, "cuda-emu bf16"}};

// bf16 parameters accumulate their gradients in f32 (autograd/node.h grad_dtype): a step of two
// micro-batches leaves each parameter the f32 sum, bit for bit, of the gradients the two give
// alone (each against the step's token count). Accumulated in bf16, the sum would be rounded to 8
// significant bits, which many of these sums are not.
TEST(TrainStep, Bf16ParametersAccumulateMicroBatchGradientsInF32) {
  const ModelConfig c = fixture_config();
  const VlmBatch both = make_batch(c), first = samples(both, 0, 1), second = samples(both, 1, 1);
  const MicroInput pair[] = {input(first), input(second)};
  // The other micro-batch counts in the step's tokens but is not computed.
  const MicroInput only_first[] = {input(first), {nullptr, second.supervised_tokens()}};
  const MicroInput only_second[] = {{nullptr, first.supervised_tokens()}, input(second)};
  for (const Precision& p : kPrecisions) {
    if (p.dtype != DType::bf16) continue;
    SCOPED_TRACE(p.name);
    Staged t(c);
    t.start(p.device, p.dtype);
    const auto grads = [&](std::span<const MicroInput> micro) {
      t.step->forward_backward_and_reduce(micro);
      std::vector<std::vector<float>> g;
      for (const NamedTensor& q : t.optim->params()) {
        EXPECT_EQ(q.tensor.dtype(), DType::bf16) << q.name;
        EXPECT_EQ(q.tensor.grad().dtype(), DType::f32) << q.name;
        g.push_back(q.tensor.grad().to_float_vector());
      }
      t.optim->zero_grad();
      return g;
    };
    const auto g1 = grads(only_first), g2 = grads(only_second), g = grads(pair);
    const ParamList& ps = t.optim->params();
    size_t not_bf16 = 0, total = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      for (size_t j = 0; j < g[i].size(); ++j) {
        const float sum = g1[i][j] + g2[i][j];
        ASSERT_EQ(g[i][j], sum) << ps[i].name << "[" << j << "]";
        not_bf16 += bf16_to_f32(f32_to_bf16(sum)) != sum;
      }
      total += g[i].size();
    }
    std::printf("%s: %zu of %zu accumulated gradient elements are not bf16 values\n", p.name,
                not_bf16, total);
    EXPECT_GT(not_bf16, total / 10) << "a bf16 sum would have given the same values";
  }
}

// The data-parallel reduction of bf16 parameters' gradients runs on their f32 gradients (buckets
// of grad_dtype, here several of 16 KB): with a second rank holding the same samples, each rank's
// gradient is exactly halved by the doubled token count and doubled by the sum over ranks, so
// every gradient is one process's, bit for bit and in f32, at the first step (which learns the
// bucket layout) and the next.
TEST(TrainStep, Bf16GradientsAreReducedInF32Buckets) {
  const ModelConfig c = fixture_config();
  const VlmBatch batch = make_batch(c);
  const MicroInput in[] = {input(batch)};
  for (const Precision& p : kPrecisions) {
    if (p.dtype != DType::bf16) continue;
    SCOPED_TRACE(p.name);
    MirroredPair pair;
    Staged one(c), two(c);
    one.start(p.device, p.dtype);
    two.start(p.device, p.dtype, 1.0, &pair, size_t{16} << 10);
    for (int step = 0; step < 2; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      const StepResult r1 = one.step->forward_backward_and_reduce(in),
                       r2 = two.step->forward_backward_and_reduce(in);
      EXPECT_EQ(r2.tokens, 2 * r1.tokens);
      const ParamList &p1 = one.optim->params(), &p2 = two.optim->params();
      for (size_t i = 0; i < p1.size(); ++i) {
        ASSERT_EQ(p2[i].tensor.grad().dtype(), DType::f32) << p2[i].name;
        EXPECT_EQ(p2[i].tensor.grad().to_float_vector(), p1[i].tensor.grad().to_float_vector())
            << p2[i].name;
      }
      EXPECT_TRUE(one.step->update(r1, 1e-3));
      EXPECT_TRUE(two.step->update(r2, 1e-3));
    }
    EXPECT_TRUE(one.state() == two.state());
  }
}

// The very first step of a run is poisoned: nothing is applied (weights, fp32 masters, the zero
// moments and the step count are bit for bit what they were), and the next good step is exactly
// the first step of a run that never saw the poisoned one.
TEST(TrainStep, NonFiniteFirstStepOfAFreshRunChangesNothing) {
  const ModelConfig c = fixture_config();
  const VlmBatch good = make_batch(c), bad = with_nan_pixel(good);
  const MicroInput good_in[] = {input(good)}, bad_in[] = {input(bad)};
  for (const Precision& p : kPrecisions) {
    SCOPED_TRACE(p.name);
    Staged t(c), u(c);
    t.start(p.device, p.dtype);
    u.start(p.device, p.dtype);
    const Staged::State s0 = t.state();
    for (const auto& m : s0.moments)
      for (float x : m) ASSERT_EQ(x, 0.0f);
    const StepResult r = t.step->run(bad_in, 1e-3);
    EXPECT_FALSE(r.applied);
    EXPECT_TRUE(std::isnan(r.loss));
    EXPECT_TRUE(t.state() == s0) << "a skipped first step changed the weights or the optimizer";
    ASSERT_TRUE(t.step->run(good_in, 1e-3).applied);
    ASSERT_TRUE(u.step->run(good_in, 1e-3).applied);
    EXPECT_EQ(t.optim->steps(), 1);
    EXPECT_TRUE(t.state() == u.state()) << "the first good step differs from a clean run's";
  }
}

// A run resumed from a checkpoint (weights and moments loaded on the CPU, then moved to the
// device) whose first step is poisoned keeps the loaded state bit for bit, and then continues
// exactly as the run it was resumed from.
TEST(TrainStep, NonFiniteFirstStepAfterAResumeChangesNothing) {
  const ModelConfig c = fixture_config();
  const VlmBatch good = make_batch(c), bad = with_nan_pixel(good);
  const MicroInput good_in[] = {input(good)}, bad_in[] = {input(bad)};
  // The run that wrote the "checkpoint": two steps on the CPU in fp32.
  Staged a(c);
  a.start(kCPU, DType::f32);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(a.step->run(good_in, 1e-3).applied);
  std::map<std::string, Tensor> saved_moments;
  for (const auto& [name, t] : a.optim->state_tensors()) saved_moments.emplace(name, t.clone());
  std::vector<Tensor> saved_weights;
  for (const NamedTensor& p : a.optim->params()) saved_weights.push_back(p.tensor.clone());
  for (const Precision& p : kPrecisions) {
    SCOPED_TRACE(p.name);
    Staged b(c);
    for (size_t i = 0; i < saved_weights.size(); ++i) {
      Tensor w = b.optim->params()[i].tensor;
      w.copy_(saved_weights[i]);
    }
    b.optim->load_state(saved_moments, 2);
    b.start(p.device, p.dtype);
    const Staged::State loaded = b.state();
    const StepResult r = b.step->run(bad_in, 1e-3);
    EXPECT_FALSE(r.applied);
    EXPECT_TRUE(b.state() == loaded) << "a skipped step after resume changed the state";
    ASSERT_TRUE(b.step->run(good_in, 1e-3).applied);
    EXPECT_EQ(b.optim->steps(), 3);
    if (p.device.is_cpu() && p.dtype == DType::f32) {
      Staged& ref = a;  // one more good step of the original (fp32 CPU) run
      ASSERT_TRUE(ref.step->run(good_in, 1e-3).applied);
      EXPECT_TRUE(b.state() == ref.state()) << "the resumed run diverged from the original";
    }
  }
}

// A gradient whose clipped norm exceeds kMaxAppliedGradNorm would overflow the fp32 second moment
// when squared: without clipping such a step is skipped like a non-finite one; with clipping it
// is scaled down and applied, leaving finite moments.
TEST(TrainStep, GradientsTooLargeToSquareInFp32AreNotApplied) {
  const ModelConfig c = fixture_config();
  const VlmBatch good = make_batch(c);
  const MicroInput in[] = {input(good)};
  for (const double clip : {0.0, 1.0}) {
    SCOPED_TRACE(clip);
    Staged t(c);
    t.start(kCPU, DType::f32, clip);
    ASSERT_TRUE(t.step->run(in, 1e-3).applied);
    const Staged::State s0 = t.state();
    StepResult r = t.step->forward_backward_and_reduce(in);
    for (const NamedTensor& p : t.optim->params())
      if (Tensor g = p.tensor.grad(); g.defined()) g.copy_(ops::scale(g, 1e21));
    r.grad_norm = t.step->grad_norm();
    ASSERT_TRUE(std::isfinite(r.grad_norm));
    ASSERT_GT(r.grad_norm, kMaxAppliedGradNorm);
    const bool applied = t.step->update(r, 1e-3);
    EXPECT_EQ(applied, clip > 0);
    if (!applied) {
      EXPECT_TRUE(t.state() == s0);
    }
    for (const auto& m : t.state().moments)
      for (float x : m) ASSERT_TRUE(std::isfinite(x));
  }
}
}  // namespace
}  // namespace minivlm
