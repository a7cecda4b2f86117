// The point-wise math of the CPU back-end (binary operations, activations), shared by its f32/f64
// loops (cpu/elementwise.cpp, cpu/activations.cpp) and its bf16 loops (cpu/bf16_backend.cpp), which
// compute in fp32.
#pragma once
#include <cmath>
#include <type_traits>

#include "core/backend.h"
#include "cpu/vec_exp.h"

namespace minivlm::cpu {

// Calls f(op) with op a function object for the kind, so each loop body is branch-free.
template <typename F>
void with_binary(BinaryOp kind, F&& f) {
  switch (kind) {
    case BinaryOp::add:
      return f([](auto x, auto y) { return x + y; });
    case BinaryOp::sub:
      return f([](auto x, auto y) { return x - y; });
    case BinaryOp::mul:
      return f([](auto x, auto y) { return x * y; });
  }
}

template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + exp_fast(-x));
}

// gelu_tanh's constants: √(2/π) and the cubic coefficient.
constexpr double kSqrt2OverPi = 0.7978845608028654, kGeluCubic = 0.044715;

// The activation is a template argument so that each loop body is branch-free and vectorizes.
template <Activation A, typename T>
T act_forward(T x) {
  if constexpr (A == Activation::silu) return x * sigmoid(x);
  if constexpr (A == Activation::gelu) return T(0.5) * x * (T(1) + std::erf(x * T(M_SQRT1_2)));
  if constexpr (A == Activation::quick_gelu) return x * sigmoid(T(1.702) * x);
  if constexpr (A == Activation::gelu_tanh)
    return T(0.5) * x * (T(1) + std::tanh(T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x)));
}

template <Activation A, typename T>
T act_derivative(T x) {
  if constexpr (A == Activation::silu) {
    const T s = sigmoid(x);
    return s * (T(1) + x * (T(1) - s));
  }
  if constexpr (A == Activation::gelu) {
    const T cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
    const T pdf = std::exp(T(-0.5) * x * x) * T(0.3989422804014327);  // 1/sqrt(2π)
    return cdf + x * pdf;
  }
  if constexpr (A == Activation::quick_gelu) {
    const T s = sigmoid(T(1.702) * x);
    return s + T(1.702) * x * s * (T(1) - s);
  }
  if constexpr (A == Activation::gelu_tanh) {
    const T t = std::tanh(T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x));
    const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x * x);
    return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
  }
}

// Calls f(std::integral_constant<Activation, a>{}).
template <typename F>
void with_activation(Activation a, F&& f) {
  switch (a) {
    case Activation::silu:
      return f(std::integral_constant<Activation, Activation::silu>{});
    case Activation::gelu:
      return f(std::integral_constant<Activation, Activation::gelu>{});
    case Activation::quick_gelu:
      return f(std::integral_constant<Activation, Activation::quick_gelu>{});
    case Activation::gelu_tanh:
      return f(std::integral_constant<Activation, Activation::gelu_tanh>{});
  }
}

}  // namespace minivlm::cpu
