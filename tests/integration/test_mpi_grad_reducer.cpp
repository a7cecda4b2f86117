// The grad-ready hook of the autograd engine and the bucketed gradient reduction built on it: the
// layout learned from backward's order, buckets started while backward runs and in layout order,
// accumulation, parameters without a gradient; in-process against a recording communicator, then
// on two MPI ranks whose graphs differ.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "autograd/node.h"
#include "dist/grad_reducer.h"
#include "mpi_util.h"
#include "ops/ops.h"

namespace minivlm {
namespace {

using testing::is_mpi_rank;
using testing::run_on_ranks;

Tensor param(const std::string& name, std::vector<float> v) {
  Tensor t = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  t.set_name(name);
  t.set_requires_grad(true);
  return t;
}

// loss = Σ x ⊙ p₀ ⊙ p₁ ⊙ …, multiplying in the given order: backward reaches the last factor first.
Tensor chain(const Tensor& x, const std::vector<Tensor>& factors) {
  Tensor h = x;
  for (const Tensor& p : factors) h = ops::mul(h, p);
  return ops::sum(h);
}

TEST(GradReadyHook, ReportsEachLeafOnceWithItsFinalGradientInBackwardOrder) {
  Tensor a = param("a", {1, 2}), b = param("b", {3, 4}), c = param("c", {5, 6});
  const Tensor x = Tensor::from_vector(std::vector<float>{1, -1}, {2});
  // c is used twice: its gradient is the sum of both uses, reported once.
  const Tensor loss = ops::add(chain(x, {a, b, c}), ops::sum(ops::mul(c, c)));
  std::vector<std::string> names;
  std::map<std::string, std::vector<float>> seen;
  {
    GradReadyHookGuard guard([&](TensorImpl& leaf) {
      names.push_back(leaf.name);
      seen[leaf.name] = Tensor(leaf.grad).to_float_vector();
    });
    loss.backward();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"c", "b", "a"}));
  EXPECT_EQ(seen["c"], (std::vector<float>{1 * 1 * 3 + 2 * 5, -1 * 2 * 4 + 2 * 6}));
  EXPECT_EQ(seen["a"], (std::vector<float>{1 * 3 * 5, -1 * 4 * 6}));
  for (const Tensor* t : {&a, &b, &c}) EXPECT_EQ(seen[t->name()], t->grad().to_float_vector());
  // Outside the guard's scope nothing is reported.
  names.clear();
  chain(x, {a}).backward();
  EXPECT_TRUE(names.empty());
}

// Two ranks as seen from rank 0: the peer contributes `peer` to every gradient element. Records
// each started bucket's size and the probe parameter's gradient at that moment.
class RecordingComm final : public Communicator {
 public:
  explicit RecordingComm(const Tensor& probe) : probe_(probe) {}
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  std::string name() const override { return "recording"; }
  void all_reduce_sum(const std::vector<Tensor>&) override { ADD_FAILURE() << "unexpected"; }
  void all_reduce_sum(std::vector<double>&) override { ADD_FAILURE() << "unexpected"; }
  std::unique_ptr<PendingCollective> start_all_reduce_sum(const Tensor& t) override {
    started.push_back({t.numel(), probe_.grad().defined() ? probe_.grad().to_float_vector()
                                                          : std::vector<float>{}});
    float* v = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) v[i] += peer;
    struct Done final : PendingCollective {
      bool test() override { return true; }
      void wait() override {}
    };
    return std::make_unique<Done>();
  }
  void broadcast(const std::vector<Tensor>&, int) override { ADD_FAILURE() << "unexpected"; }
  void broadcast(std::string&, int) override {}
  std::vector<std::string> all_gather(const std::string& s) override { return {s}; }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& m) override { throw std::runtime_error(m); }

  struct Start {
    int64_t numel;
    std::vector<float> probe_grad;  // empty: none yet
  };
  std::vector<Start> started;
  float peer = 100;

 private:
  Tensor probe_;
};

TEST(GradReducer, LearnsTheLayoutThenStartsBucketsDuringBackwardInThatOrder) {
  // The list order differs from backward's order (d, c, b, a); e never receives a gradient.
  Tensor a = param("a", {1, 2}), b = param("b", {3, 4}), c = param("c", {5, 6}),
         d = param("d", {7, 8}), e = param("e", {0, 0, 0});
  const ParamList list = {{"c", c}, {"a", a}, {"e", e}, {"d", d}, {"b", b}};
  const Tensor x = Tensor::from_vector(std::vector<float>{1, -1}, {2});
  RecordingComm comm(a);
  GradReducer reducer(comm, list, /*bucket_bytes=*/16);  // two of these f32[2] per bucket

  // Step 1 learns the order: nothing starts during backward.
  reducer.backward(chain(x, {a, b, c, d}), /*overlap=*/true);
  EXPECT_TRUE(comm.started.empty());
  reducer.reduce();
  EXPECT_EQ(reducer.layout(), (std::vector<std::vector<size_t>>{{3, 0}, {4, 1}, {2}}));
  ASSERT_EQ(comm.started.size(), 3u);
  EXPECT_EQ(a.grad().to_float_vector(),
            (std::vector<float>{1 * 3 * 5 * 7 + 100, -1 * 4 * 6 * 8 + 100}));
  EXPECT_EQ(e.grad().to_float_vector(), (std::vector<float>{100, 100, 100}));

  // Step 2, with accumulation: only the last pass starts buckets; {d, c} starts while a holds
  // only the first pass's gradient.
  for (NamedTensor p : list) p.tensor.zero_grad();
  comm.started.clear();
  reducer.backward(chain(x, {a, b, c, d}), /*overlap=*/false);
  EXPECT_TRUE(comm.started.empty());
  reducer.backward(chain(ops::scale(x, 2.0), {a, b, c, d}), /*overlap=*/true);
  ASSERT_EQ(comm.started.size(), 2u);  // e's bucket waits for reduce()
  EXPECT_EQ(comm.started[0].numel, 4);
  EXPECT_EQ(comm.started[0].probe_grad, (std::vector<float>{1 * 3 * 5 * 7, -1 * 4 * 6 * 8}));
  EXPECT_EQ(comm.started[1].probe_grad, (std::vector<float>{3 * 1 * 3 * 5 * 7, -3 * 4 * 6 * 8}));
  reducer.reduce();
  ASSERT_EQ(comm.started.size(), 3u);
  EXPECT_EQ(d.grad().to_float_vector(),
            (std::vector<float>{3 * 1 * 1 * 3 * 5 + 100, -3 * 2 * 4 * 6 + 100}));
  EXPECT_EQ(e.grad().to_float_vector(), (std::vector<float>{100, 100, 100}));
}

TEST(GradReducer, AloneLeavesGradientsAndZeroFillsMissingOnes) {
  Tensor a = param("a", {1, 2}), e = param("e", {5});
  const Tensor x = Tensor::from_vector(std::vector<float>{3, 4}, {2});
  auto single = make_single_communicator();
  GradReducer reducer(*single, {{"a", a}, {"e", e}}, 1 << 20);
  reducer.backward(chain(x, {a}), true);
  reducer.reduce();
  EXPECT_EQ(a.grad().to_float_vector(), (std::vector<float>{3, 4}));
  EXPECT_EQ(e.grad().to_float_vector(), (std::vector<float>{0}));
  EXPECT_TRUE(reducer.layout().empty());
}

Communicator& world() {
  static const std::unique_ptr<Communicator> comm = make_communicator();
  return *comm;
}

// Rank 1 never uses e and multiplies in another order, so its gradients become final in another
// order; the ranks still start the same buckets in the same sequence and get exact sums.
TEST(MpiGradReducer, SumsOverRanksWhoseGraphsDiffer) {
  if (!is_mpi_rank()) return run_on_ranks(2);
  Communicator& comm = world();
  ASSERT_EQ(comm.world_size(), 2);
  const int r = comm.rank();
  Tensor a = param("a", {1, 2}), b = param("b", {3, 4, 5}), c = param("c", {6, 7}),
         e = param("e", {8, 9});
  const ParamList list = {{"a", a}, {"b", b}, {"c", c}, {"e", e}};
  GradReducer reducer(comm, list, /*bucket_bytes=*/16);
  // loss_r = Σ x_r ⊙ a ⊙ c  +  Σ b ⊙ b  (+ Σ e on rank 0)
  auto loss = [&](float scale) {
    const Tensor x = Tensor::from_vector(std::vector<float>{scale * (r + 1), scale * 10}, {2});
    Tensor l = ops::add(r == 0 ? chain(x, {a, c}) : chain(x, {c, a}), ops::sum(ops::mul(b, b)));
    return r == 0 ? ops::add(l, ops::sum(e)) : l;
  };
  for (int step = 0; step < 3; ++step) {
    for (NamedTensor p : list) p.tensor.zero_grad();
    if (step == 2) reducer.backward(loss(0.5f), false);  // accumulation
    reducer.backward(loss(1.0f), true);
    reducer.reduce();
    const float k = step == 2 ? 1.5f : 1.0f;  // the micro-batches' summed scale
    EXPECT_EQ(a.grad().to_float_vector(), (std::vector<float>{k * 3 * 6, k * 20 * 7}));
    EXPECT_EQ(c.grad().to_float_vector(), (std::vector<float>{k * 3 * 1, k * 20 * 2}));
    const float nb = step == 2 ? 2 : 1;  // b ⊙ b appears in each pass, on each rank
    EXPECT_EQ(b.grad().to_float_vector(),
              (std::vector<float>{nb * 2 * 2 * 3, nb * 2 * 2 * 4, nb * 2 * 2 * 5}));
    EXPECT_EQ(e.grad().to_float_vector(), (std::vector<float>{nb, nb}));
  }
  // Every rank built rank 0's layout.
  std::string mine;
  for (const auto& bucket : reducer.layout()) {
    for (size_t k : bucket) mine += std::to_string(k) + ",";
    mine += ";";
  }
  const std::vector<std::string> all = comm.all_gather(mine);
  EXPECT_EQ(all[0], all[1]);
  // Rank 0's gradients became final in the order e, b, c, a (rank 1's: b, a, c).
  EXPECT_EQ(reducer.layout(), (std::vector<std::vector<size_t>>{{3}, {1}, {2, 0}})) << mine;
}

}  // namespace
}  // namespace minivlm
