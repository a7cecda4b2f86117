// Element-wise loops split across the OpenMP threads as one contiguous range per thread.
#pragma once
#include <omp.h>

#include <cstdint>

namespace minivlm::cpu {

// Calls fn(begin, end) on each thread's share of [0, n); one call on the calling thread when n is
// below min_parallel. The body should copy the pointers it uses into locals before its loop: read
// through the closure's references, GCC vectorizes with gathers and scatters instead of plain
// loads and stores.
template <typename F>
void parallel_ranges(int64_t n, int64_t min_parallel, F&& fn) {
  if (n < min_parallel) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    fn(n * t / nt, n * (t + 1) / nt);
  }
}

}  // namespace minivlm::cpu
