// CUDA atomics on the host: std::atomic_ref with relaxed order, as on the device (atomics there
// order nothing but themselves). Types without a native read-modify-write (__half, __nv_bfloat16
// and their pairs) add through a compare-and-swap loop on their bits, rounding like the device.
#pragma once

#include <atomic>
#include <concepts>
#include <type_traits>

#include "keywords.h"

namespace simt::detail {

template <typename T, typename... Allowed>
concept one_of = (std::same_as<T, Allowed> || ...);

template <typename T>
concept atomic_int = one_of<T, int, unsigned, unsigned long long>;

template <typename T>
concept atomic_addable = one_of<T, int, unsigned, unsigned long long, float, double, __half,
                                __half2, __nv_bfloat16, __nv_bfloat162>;

inline constexpr auto relaxed = std::memory_order_relaxed;

// A compare-and-swap loop on the object's bits (the GCC builtins accept any type of 2, 4 or 8
// bytes; std::atomic_ref rejects CUDA's pair types, which are not trivially copyable).
template <typename T, typename F>
T atomic_update(T* address, F&& update) {
  T old;
  __atomic_load(address, &old, __ATOMIC_RELAXED);
  T desired;
  do {
    desired = update(old);
  } while (!__atomic_compare_exchange(address, &old, &desired, true, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED));
  return old;
}

}  // namespace simt::detail

template <simt::detail::atomic_addable T>
T atomicAdd(T* address, std::type_identity_t<T> value) {
  if constexpr (std::integral<T> || std::floating_point<T>) {
    return std::atomic_ref<T>(*address).fetch_add(value, simt::detail::relaxed);
  } else {
    return simt::detail::atomic_update(address, [&](T old) { return T(old + value); });
  }
}

template <simt::detail::atomic_int T>
T atomicSub(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_sub(value, simt::detail::relaxed);
}

template <simt::detail::one_of<int, unsigned, unsigned long long, float> T>
T atomicExch(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).exchange(value, simt::detail::relaxed);
}

template <simt::detail::one_of<int, unsigned, unsigned long long, unsigned short> T>
T atomicCAS(T* address, std::type_identity_t<T> compare, std::type_identity_t<T> value) {
  std::atomic_ref<T>(*address).compare_exchange_strong(compare, value, simt::detail::relaxed,
                                                       simt::detail::relaxed);
  return compare;
}

template <simt::detail::one_of<int, unsigned, long long, unsigned long long> T>
T atomicMax(T* address, std::type_identity_t<T> value) {
  return simt::detail::atomic_update(address, [&](T old) { return old < value ? value : old; });
}

template <simt::detail::one_of<int, unsigned, long long, unsigned long long> T>
T atomicMin(T* address, std::type_identity_t<T> value) {
  return simt::detail::atomic_update(address, [&](T old) { return value < old ? value : old; });
}

template <simt::detail::atomic_int T>
T atomicAnd(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_and(value, simt::detail::relaxed);
}

template <simt::detail::atomic_int T>
T atomicOr(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_or(value, simt::detail::relaxed);
}

template <simt::detail::atomic_int T>
T atomicXor(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_xor(value, simt::detail::relaxed);
}

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
