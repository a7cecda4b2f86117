// launch(kernel, grid, block, smem_bytes, stream, args...): the emulator's kernel launch.
//
// Every block runs to completion before launch() returns (the stream is irrelevant to a
// synchronous executor). Each CUDA thread calls the kernel with its own copies of the arguments,
// converted to the kernel's parameter types as a real launch converts them. A rule broken inside
// the kernel (divergent barrier, bad warp mask, deadlock, ...) aborts the grid and throws
// simt::Error here; so do a block of more than 1024 threads and dynamic shared memory over the
// kernel's limit (48 KiB unless raised with set_max_dynamic_smem, at most 227 KiB). Static
// __shared__ arrays are not counted: ptxas checks them when nvcc builds the kernel.
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "keywords.h"

namespace simt {

inline constexpr std::size_t kDefaultDynamicSmem = 48 * 1024;
inline constexpr std::size_t kMaxDynamicSmem = 227 * 1024;

namespace detail {

using KernelId = void (*)();

struct GridTask {
  KernelId kernel;
  void (*run)(const void* closure);  // calls the kernel for the current emulated thread
  const void* closure;
};

void run_grid(dim3 grid, dim3 block, std::size_t smem_bytes, const GridTask& task);
void set_max_dynamic_smem(KernelId kernel, std::size_t bytes);

}  // namespace detail

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem_bytes,
            cudaStream_t /*stream*/, Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args),
                "launch: the number of arguments differs from the kernel's parameters");
  struct Closure {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...> args;
  };
  const Closure closure{kernel, {std::forward<Args>(args)...}};
  const auto run = [](const void* p) {
    const auto& c = *static_cast<const Closure*>(p);
    std::apply(c.kernel, c.args);
  };
  detail::run_grid(grid, block, smem_bytes,
                   {reinterpret_cast<detail::KernelId>(kernel), run, &closure});
}

// Like cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes).
template <typename... Params>
void set_max_dynamic_smem(void (*kernel)(Params...), std::size_t bytes) {
  detail::set_max_dynamic_smem(reinterpret_cast<detail::KernelId>(kernel), bytes);
}

}  // namespace simt
