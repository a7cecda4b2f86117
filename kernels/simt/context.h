// What a kernel sees of the thread running it: threadIdx, blockIdx, blockDim, gridDim and the
// block's dynamic shared memory. The emulator points tl_context at the running fiber's record on
// every switch, so these read the current CUDA thread's values; they are const to the kernel.
#pragma once

#include "keywords.h"

namespace simt {

struct ThreadContext {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
  void* dynamic_smem;
};

namespace detail {

[[gnu::tls_model("initial-exec")]] inline thread_local constinit const ThreadContext* tl_context =
    nullptr;

[[noreturn]] void outside_kernel(const char* what);

inline const ThreadContext& context(const char* what) {
  if (tl_context == nullptr) [[unlikely]]
    outside_kernel(what);
  return *tl_context;
}

}  // namespace detail
}  // namespace simt

#define threadIdx (::simt::detail::context("threadIdx").thread_idx)
#define blockIdx (::simt::detail::context("blockIdx").block_idx)
#define blockDim (::simt::detail::context("blockDim").block_dim)
#define gridDim (::simt::detail::context("gridDim").grid_dim)

// The block's dynamic shared memory (the smem_bytes of launch()), filled with 0xFF bytes (NaN as
// float) before every block so that reads of never-written elements show.
template <typename T>
T* dynamic_smem() {
  return static_cast<T*>(::simt::detail::context("dynamic_smem").dynamic_smem);
}
