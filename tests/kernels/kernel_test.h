// Helpers for the emulated kernel tests: storage conversions, seeded inputs, shape sweeps, runs
// under every schedule of the SIMT emulator (bit-identical results required) and tolerance checks
// against double-precision references written in the tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/portable.h"

namespace minivlm::kernels::test {

namespace k = minivlm::kernels::emu;

using StorageTypes = ::testing::Types<float, bf16>;

inline double to_double(float x) { return x; }
inline double to_double(bf16 x) { return static_cast<double>(__bfloat162float(x)); }

template <typename T>
T round_to(double x) {
  if constexpr (std::is_same_v<T, float>) {
    return static_cast<float>(x);
  } else {
    return __float2bfloat16_rn(static_cast<float>(x));
  }
}

template <typename T>
std::vector<double> to_double(const std::vector<T>& v) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = to_double(v[i]);
  return out;
}

// Fills outputs before each run so that an element a kernel fails to write shows as NaN.
template <typename T>
T poison() {
  return round_to<T>(std::numeric_limits<double>::quiet_NaN());
}

// Uniform values in [lo, hi), rounded to T: the references start from exactly the stored inputs.
template <typename T>
std::vector<T> random_values(std::size_t n, std::uint64_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(n);
  for (T& x : v) x = round_to<T>(dist(rng));
  return v;
}

// MINIVLM_SMALL_SHAPES=1 (the sanitizer runs) shrinks the sweeps.
inline bool small_shapes() {
  const char* v = std::getenv("MINIVLM_SMALL_SHAPES");
  return v != nullptr && std::string_view(v) == "1";
}

// Row-wise kernels run on these shapes: row and column counts around the warp size and its
// multiples, with tails, each at a block size (96 threads: three warps, not a power of two).
struct RowCase {
  int rows, cols, block;
};
inline std::vector<RowCase> row_cases() {
  if (small_shapes()) return {{1, 1, 32}, {7, 65, 96}, {33, 7, 32}, {2, 130, 64}};
  return {{1, 1, 32},   {7, 7, 96},  {65, 65, 32},  {130, 130, 256},
          {5, 513, 96}, {33, 1, 64}, {3, 300, 1024}};
}
inline std::string row_case_trace(const RowCase& c) {
  return "N = " + std::to_string(c.rows) + ", C = " + std::to_string(c.cols) +
         ", block = " + std::to_string(c.block);
}

// Element-wise kernels: element counts with tails, each at a block size.
struct ElementCase {
  std::size_t n;
  int block;
};
inline std::vector<ElementCase> element_cases() {
  if (small_shapes()) return {{1, 32}, {65, 96}, {1000, 64}};
  return {{1, 32}, {7, 96}, {65, 32}, {1000, 256}, {4099, 1024}};
}

// Relative tolerance of a kernel's output: fp32 arithmetic for float storage; for bf16 one
// rounding to 8 significant bits on top.
template <typename T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1.0 / 128;
}

inline double rms(const std::vector<double>& v) {
  double squares = 0;
  for (double x : v) squares += x * x;
  return v.empty() ? 0.0 : std::sqrt(squares / static_cast<double>(v.size()));
}

// |got − ref| ≤ rtol · (|ref| + scale) for every element: relative where values are large, and
// relative to `scale` where they cancel to near zero. The scale defaults to rms(ref); a result
// that cancels everywhere (an RMSNorm gradient over one column) passes the scale of its terms.
template <typename T>
void expect_close(const char* name, const std::vector<T>& got, const std::vector<double>& ref,
                  double rtol = tolerance<T>(), double scale = -1) {
  ASSERT_EQ(got.size(), ref.size()) << name;
  if (scale < 0) scale = rms(ref);
  int reported = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = to_double(got[i]);
    const double bound = rtol * (std::abs(ref[i]) + scale) + 1e-30;
    if (!(std::abs(g - ref[i]) <= bound) && reported++ < 5) {
      ADD_FAILURE() << name << "[" << i << "] = " << g << ", reference " << ref[i] << " (bound "
                    << bound << ")";
    }
  }
}

// Collects the outputs of one run per schedule: the first schedule's bits are the standard, every
// other schedule must reproduce them exactly.
class ScheduleBits {
 public:
  void begin(std::string schedule) {
    schedule_ = std::move(schedule);
    index_ = 0;
  }

  template <typename T>
  void check(const char* name, const std::vector<T>& v) {
    std::vector<unsigned char> bytes(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
    if (index_ == recorded_.size()) {
      recorded_.push_back({schedule_, std::move(bytes)});
    } else if (recorded_[index_].bytes != bytes) {
      std::size_t at = 0;
      while (at < v.size() &&
             std::memcmp(&v[at], recorded_[index_].bytes.data() + at * sizeof(T), sizeof(T)) == 0)
        ++at;
      ADD_FAILURE() << name << " differs between schedules " << recorded_[index_].schedule
                    << " and " << schedule_ << ", first at element " << at;
    }
    ++index_;
  }

 private:
  struct Recorded {
    std::string schedule;
    std::vector<unsigned char> bytes;
  };
  std::string schedule_;
  std::vector<Recorded> recorded_;
  std::size_t index_ = 0;
};

// Calls body(bits) once under each of simt::all_schedules() (forward, reverse, random threads,
// shuffled blocks). The body resets its outputs, launches, and passes each output to bits.check.
template <typename Body>
void for_each_schedule(Body&& body) {
  struct Restore {
    ~Restore() { simt::clear_schedule(); }
  } restore;
  ScheduleBits bits;
  for (const simt::Schedule& schedule : simt::all_schedules()) {
    simt::set_schedule(schedule);
    bits.begin(schedule.name());
    body(bits);
  }
}

inline std::string shape_trace(std::initializer_list<std::pair<const char*, long>> dims) {
  std::string s;
  for (const auto& [name, value] : dims) {
    s += (s.empty() ? "" : ", ") + std::string(name) + " = " + std::to_string(value);
  }
  return s;
}

}  // namespace minivlm::kernels::test
