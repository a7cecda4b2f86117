// Layout kernels: strided copies and conversions between views, row gathers and scatters, and the
// row scatter-add, against references written here, under every schedule of the emulator.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

// ---- strided_convert ----

StridedView view(std::vector<int64_t> shape, std::vector<int64_t> stride) {
  StridedView v;
  v.ndim = static_cast<int>(shape.size());
  for (int d = 0; d < v.ndim; ++d) {
    v.shape[d] = shape[d];
    v.stride[d] = stride[d];
  }
  return v;
}

// The row-major view of a tensor of this shape.
StridedView contiguous(const std::vector<int64_t>& shape) {
  std::vector<int64_t> stride(shape.size());
  int64_t s = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    stride[d] = s;
    s *= shape[d];
  }
  return view(shape, stride);
}

// The offsets of a view's elements in row-major order of its shape, by counting through the
// multi-index like an odometer.
std::vector<int64_t> offsets(const StridedView& v) {
  std::vector<int64_t> out;
  std::vector<int64_t> index(v.ndim, 0);
  const std::size_t n = v.numel();
  for (std::size_t e = 0; e < n; ++e) {
    int64_t off = 0;
    for (int d = 0; d < v.ndim; ++d) off += index[d] * v.stride[d];
    out.push_back(off);
    for (int d = v.ndim - 1; d >= 0 && ++index[d] == v.shape[d]; --d) index[d] = 0;
  }
  return out;
}

// Elements a view can reach: 1 + Σ (shape − 1)·stride (strides are not negative here).
std::size_t extent(const StridedView& v) {
  std::size_t e = 1;
  for (int d = 0; d < v.ndim; ++d)
    if (v.shape[d] > 0) e += static_cast<std::size_t>((v.shape[d] - 1) * v.stride[d]);
  return e;
}

// A source view and a destination view of the same shape.
struct ViewCase {
  const char* name;
  StridedView out, in;
  int block;
};

std::vector<ViewCase> view_cases() {
  const std::vector<int64_t> s3 = {3, 5, 7};
  std::vector<ViewCase> cases = {
      {"contiguous", contiguous(s3), contiguous(s3), 32},
      // in is a [7, 5, 3] tensor read transposed (dims 2, 1, 0).
      {"transposed source", contiguous(s3), view(s3, {1, 3, 15}), 96},
      // the same transpose on the destination side, and a source broadcast along dim 1.
      {"transposed destination, broadcast source", view(s3, {1, 3, 15}), view(s3, {7, 0, 1}), 64},
      // rows of a tensor 9 wide into every other row of a tensor as wide (row stride 18).
      {"padded rows", view({4, 7}, {18, 1}), view({4, 7}, {9, 1}), 32},
      {"scalar", view({}, {}), view({}, {}), 32},
      {"empty", view({3, 0, 2}, {0, 2, 1}), view({3, 0, 2}, {0, 2, 1}), 32},
  };
  if (!small_shapes()) {
    const std::vector<int64_t> s5 = {2, 3, 4, 5, 33};
    cases.push_back(
        {"five dimensions, permuted", contiguous(s5), view(s5, {3, 1, 6 * 33, 24 * 33, 6}), 256});
    const std::vector<int64_t> s8 = {2, 1, 3, 2, 1, 2, 3, 65};
    cases.push_back({"eight dimensions", contiguous(s8), contiguous(s8), 1024});
  }
  return cases;
}

// Copies of each element size are exact: out[view_out(i)] = in[view_in(i)] bit for bit, every
// element the destination view does not reach left as it was.
template <typename U>
void check_strided_copy() {
  for (const ViewCase& c : view_cases()) {
    SCOPED_TRACE(std::string(c.name) + ", " + std::to_string(sizeof(U)) + "-byte elements");
    std::vector<U> in(extent(c.in)), before(extent(c.out));
    std::mt19937_64 rng(31);
    for (U& x : in) x = static_cast<U>(rng());
    for (U& x : before) x = static_cast<U>(rng());
    std::vector<U> out;
    for_each_schedule([&](ScheduleBits& bits) {
      out = before;
      k::strided_convert(out.data(), c.out, in.data(), c.in, nullptr, c.block);
      bits.check("out", out);
    });
    std::vector<U> want = before;
    const std::vector<int64_t> src = offsets(c.in), dst = offsets(c.out);
    for (std::size_t i = 0; i < src.size(); ++i) want[dst[i]] = in[src[i]];
    EXPECT_EQ(out, want);
  }
}

TEST(LayoutKernels, StridedCopyOfEveryElementSize) {
  check_strided_copy<std::uint8_t>();
  check_strided_copy<std::uint16_t>();  // bf16 storage
  check_strided_copy<std::uint32_t>();  // f32 storage
  check_strided_copy<std::uint64_t>();
}

float float_of_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
std::uint32_t bits_of(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}
std::uint16_t bits_of(bf16 x) {
  std::uint16_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
}

// bf16 is the upper half of a float: widening appends 16 zero bits.
double widen(std::uint16_t bf16_bits) {
  return float_of_bits(static_cast<std::uint32_t>(bf16_bits) << 16);
}

// The bf16 nearest to a finite float, ties to the even one: of the two bf16 values around x
// (x truncated towards zero and the next one away from it), the closer, or at equal distance the
// one whose last bit is 0.
std::uint16_t nearest_bf16(float x) {
  const auto low = static_cast<std::uint16_t>(bits_of(x) >> 16);
  const auto high = static_cast<std::uint16_t>(low + 1);
  const double below = std::abs(static_cast<double>(x) - widen(low));
  const double above = std::abs(widen(high) - static_cast<double>(x));
  if (below != above) return below < above ? low : high;
  return (low & 1) == 0 ? low : high;
}

// Values with every kind of rounding: exact, ties (to even, both ways), just off a tie, signs,
// large, tiny and subnormal magnitudes.
std::vector<float> conversion_inputs(std::size_t n) {
  std::vector<float> x;
  for (const float v : {1.0f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f,
                        -1.0f - 0x1p-8f, 3.0e38f, -2.5e-30f, 0x1.8p-130f, 0.0f, -0.0f})
    x.push_back(v);
  std::mt19937_64 rng(32);
  std::uniform_real_distribution<double> mantissa(-2, 2);
  std::uniform_int_distribution<int> exponent(-40, 40);
  while (x.size() < n) x.push_back(std::ldexp(static_cast<float>(mantissa(rng)), exponent(rng)));
  return x;
}

TEST(LayoutKernels, StridedConvertRoundsFloatToNearestEvenBf16AndWidensBack) {
  for (const ViewCase& c : view_cases()) {
    SCOPED_TRACE(c.name);
    const std::vector<int64_t> src = offsets(c.in), dst = offsets(c.out);
    const std::vector<float> in = conversion_inputs(extent(c.in));
    std::vector<bf16> narrow;
    std::vector<float> wide;
    for_each_schedule([&](ScheduleBits& bits) {
      narrow.assign(extent(c.out), poison<bf16>());
      k::strided_convert(narrow.data(), c.out, in.data(), c.in, nullptr, c.block);
      bits.check("bf16", narrow);
    });
    for (std::size_t i = 0; i < src.size(); ++i)
      ASSERT_EQ(bits_of(narrow[dst[i]]), nearest_bf16(in[src[i]]))
          << "element " << i << " = " << in[src[i]];
    // And back, from the bf16 view into a contiguous float tensor (the source view may broadcast,
    // and a destination must not overlap): every bf16 is exactly a float.
    const StridedView packed = contiguous({c.out.shape, c.out.shape + c.out.ndim});
    for_each_schedule([&](ScheduleBits& bits) {
      wide.assign(packed.numel(), poison<float>());
      k::strided_convert(wide.data(), packed, narrow.data(), c.out, nullptr, c.block);
      bits.check("float", wide);
    });
    for (std::size_t i = 0; i < dst.size(); ++i)
      ASSERT_EQ(static_cast<double>(wide[i]), widen(bits_of(narrow[dst[i]]))) << "element " << i;
  }
}

TEST(LayoutKernels, StridedConvertRejectsViewsOfDifferentShapes) {
  std::vector<std::uint32_t> x(64);
  EXPECT_THROW(k::strided_convert(x.data(), view({4, 8}, {8, 1}), x.data(), view({8, 4}, {4, 1}),
                                  nullptr, 32),
               std::invalid_argument);
  EXPECT_THROW(
      k::strided_convert(x.data(), view({32}, {1}), x.data(), view({4, 8}, {8, 1}), nullptr, 32),
      std::invalid_argument);
  StridedView too_many = view({1}, {1});
  too_many.ndim = kMaxViewDims + 1;
  EXPECT_THROW(k::strided_convert(x.data(), too_many, x.data(), too_many, nullptr, 32),
               std::invalid_argument);
}

// ---- copy_rows, add_rows ----

struct RowsCase {
  int M, R, H, block;  // M rows moved, R rows in the larger tensor, H elements per row
};

std::vector<RowsCase> rows_cases() {
  if (small_shapes()) return {{1, 1, 1, 32}, {7, 12, 65, 96}, {33, 40, 7, 32}};
  return {{1, 1, 1, 32},    {7, 12, 65, 96},   {33, 40, 7, 32},
          {5, 9, 513, 256}, {3, 3, 300, 1024}, {64, 100, 33, 64}};
}

std::string rows_trace(const RowsCase& c) {
  return shape_trace({{"M", c.M}, {"R", c.R}, {"H", c.H}, {"block", c.block}});
}

// M distinct rows of [0, R), in random order.
std::vector<int> distinct_rows(int M, int R, std::uint64_t seed) {
  std::vector<int> rows(R);
  for (int r = 0; r < R; ++r) rows[r] = r;
  std::shuffle(rows.begin(), rows.end(), std::mt19937_64(seed));
  rows.resize(M);
  return rows;
}

template <typename T>
class LayoutRowKernels : public ::testing::Test {};
TYPED_TEST_SUITE(LayoutRowKernels, StorageTypes);

// The forms the CUDA back-end uses, a gather (in_rows), a scatter (out_rows) and a scatter of
// zeros (no input), and both index arrays at once. Copies are exact; rows not written keep their
// contents.
TYPED_TEST(LayoutRowKernels, CopyRowsGathersAndScatters) {
  using T = TypeParam;
  for (const RowsCase& c : rows_cases()) {
    SCOPED_TRACE(rows_trace(c));
    const std::size_t H = static_cast<std::size_t>(c.H);
    const std::vector<int> from = distinct_rows(c.M, c.R, 33), to = distinct_rows(c.M, c.R, 34);
    const auto big = random_values<T>(c.R * H, 35, -1, 1);
    const auto small = random_values<T>(c.M * H, 36, -1, 1);
    const auto before = random_values<T>(c.R * H, 37, -1, 1);
    struct Form {
      const char* name;
      const int* out_rows;
      const T* in;
      const int* in_rows;
      std::size_t out_rows_total;
    };
    for (const Form& f :
         {Form{"gather", nullptr, big.data(), from.data(), std::size_t(c.M)},
          Form{"scatter", to.data(), small.data(), nullptr, std::size_t(c.R)},
          Form{"gather and scatter", to.data(), big.data(), from.data(), std::size_t(c.R)},
          Form{"scatter zeros", to.data(), nullptr, nullptr, std::size_t(c.R)}}) {
      SCOPED_TRACE(f.name);
      const std::vector<T> initial(before.begin(), before.begin() + f.out_rows_total * H);
      std::vector<T> out;
      for_each_schedule([&](ScheduleBits& bits) {
        out = initial;
        k::copy_rows(out.data(), f.out_rows, f.in, f.in_rows, c.M, c.H, nullptr, c.block);
        bits.check("out", out);
      });
      std::vector<T> want = initial;
      for (int i = 0; i < c.M; ++i) {
        const std::size_t dst = f.out_rows ? f.out_rows[i] : i, src = f.in_rows ? f.in_rows[i] : i;
        for (std::size_t col = 0; col < H; ++col)
          want[dst * H + col] = f.in ? f.in[src * H + col] : round_to<T>(0.0);
      }
      EXPECT_EQ(0, std::memcmp(out.data(), want.data(), want.size() * sizeof(T)));
    }
  }
}

// out[rows[i]] += in[i] with rows repeating: each row of out gets its own contents plus every
// input row aimed at it, summed in double.
TYPED_TEST(LayoutRowKernels, AddRowsSumsRepeatedRows) {
  using T = TypeParam;
  for (const RowsCase& c : rows_cases()) {
    SCOPED_TRACE(rows_trace(c));
    const std::size_t H = static_cast<std::size_t>(c.H);
    // Rows of [0, R/3]: most repeat.
    std::mt19937_64 rng(38);
    std::uniform_int_distribution<int> pick(0, c.R / 3);
    std::vector<int> rows(c.M);
    for (int& r : rows) r = pick(rng);
    const auto in = random_values<T>(c.M * H, 39, -1, 1);
    const auto before = random_values<T>(c.R * H, 40, -1, 1);
    std::vector<T> out;
    for_each_schedule([&](ScheduleBits& bits) {
      out = before;
      k::add_rows(out.data(), rows.data(), in.data(), c.M, c.H, nullptr, c.block);
      bits.check("out", out);
    });
    std::vector<double> ref = to_double(before);
    for (int i = 0; i < c.M; ++i)
      for (std::size_t col = 0; col < H; ++col)
        ref[rows[i] * H + col] += to_double(in[i * H + col]);
    // bf16 storage rounds after every add: a row hit k times carries k roundings.
    int hits = 1;
    for (int r = 0; r < c.R; ++r)
      hits = std::max<int>(hits, std::count(rows.begin(), rows.end(), r));
    expect_close("out", out, ref, hits * tolerance<T>());
  }
}

TEST(LayoutRowKernels, RejectNegativeSizes) {
  std::vector<float> x(64);
  EXPECT_THROW(k::copy_rows(x.data(), nullptr, x.data(), nullptr, -1, 8, nullptr, 32),
               std::invalid_argument);
  EXPECT_THROW(k::add_rows(x.data(), nullptr, x.data(), 8, -1, nullptr, 32), std::invalid_argument);
}

}  // namespace
}  // namespace minivlm::kernels::test
