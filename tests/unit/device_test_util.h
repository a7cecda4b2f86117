// The devices under test besides the CPU, and the comparison of tensors computed on them with the
// CPU's.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/device.h"
#include "op_test_util.h"

namespace minivlm {

// Devices as gtest prints parameters: cuda-emu rather than the object's bytes.
inline void PrintTo(const Device& d, std::ostream* os) { *os << d.str(); }

namespace testing {

// The device named by MINIVLM_TEST_DEVICE (cuda on a machine with a GPU), if set.
inline std::optional<Device> env_test_device() {
  const char* d = std::getenv("MINIVLM_TEST_DEVICE");
  return d != nullptr ? std::optional<Device>(parse_device(d)) : std::nullopt;
}

// The one device of the model tests: the emulated device, or MINIVLM_TEST_DEVICE where set.
inline const Device kEmu = env_test_device().value_or(Device{DeviceType::cuda_emu, 0});

// Every device that the op table and the device tests compare with the CPU: every registered
// back-end's besides the CPU (cuda-emu always, cuda where a GPU is usable), and the device named by
// MINIVLM_TEST_DEVICE where set.
inline std::vector<Device> test_devices() {
  std::vector<Device> devices;
  for (DeviceType t : registered_backends())
    if (t != DeviceType::cpu) devices.push_back(Device{t, 0});
  if (const std::optional<Device> d = env_test_device();
      d && std::find(devices.begin(), devices.end(), *d) == devices.end())
    devices.push_back(*d);
  return devices;
}

// A device as a gtest parameter name: cuda-emu → cuda_emu, cuda:1 → cuda_1.
inline std::string param_name(const Device& d) {
  std::string s = d.str();
  std::replace_if(
      s.begin(), s.end(), [](char c) { return !std::isalnum(c); }, '_');
  return s;
}

inline Tensor randn(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  return randn(rng, s, DType::f32);
}

// Element-wise |got − want| ≤ rtol · max|want| + atol (exact where both are 0, or for a zero
// tensor with atol 0).
inline ::testing::AssertionResult close(const Tensor& got, const Tensor& want, double rtol = 1e-5,
                                        double atol = 0) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << got.desc() << " vs " << want.desc();
  const std::vector<double> a = got.to_double_vector(), b = want.to_double_vector();
  double scale = 0;
  for (double x : b) scale = std::max(scale, std::abs(x));
  return all_close(a, b, 0.0, rtol * scale + atol);
}

}  // namespace testing
}  // namespace minivlm
