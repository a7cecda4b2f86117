// Row gathers and scatters of 2-D tensors (image rows merged into the token sequence).
#include <algorithm>
#include <cstring>

#include "cpu/backend.h"

namespace minivlm::cpu {

namespace {

// dst row i = src row rows[i] (rows null: i), as bytes.
void copy_rows(char* dst, const int64_t* dst_rows, const char* src, const int64_t* src_rows,
               int64_t m, size_t row_bytes) {
  for (int64_t i = 0; i < m; ++i)
    std::memcpy(dst + (dst_rows ? dst_rows[i] : i) * row_bytes,
                src + (src_rows ? src_rows[i] : i) * row_bytes, row_bytes);
}

}  // namespace

Tensor CpuBackend::gather_rows(const Tensor& x, const Tensor& idx) {
  const int64_t M = idx.numel(), H = x.size(1);
  Tensor out = Tensor::empty({M, H}, x.dtype());
  copy_rows(static_cast<char*>(out.raw_data()), nullptr, static_cast<const char*>(x.raw_data()),
            idx.data<int64_t>(), M, static_cast<size_t>(H) * dtype_size(x.dtype()));
  return out;
}

Tensor CpuBackend::index_add_rows(int64_t rows, const Tensor& idx, const Tensor& src) {
  const int64_t M = idx.numel(), H = src.size(1);
  const int64_t* r = idx.data<int64_t>();
  Tensor out = Tensor::zeros({rows, H}, src.dtype());
  dispatch_float("gather_rows", src, [&](auto zero) {
    using T = decltype(zero);
    const T* ps = src.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0; i < M; ++i)
      for (int64_t c = 0; c < H; ++c) po[r[i] * H + c] += ps[i * H + c];
  });
  return out;
}

Tensor CpuBackend::scatter_rows(const Tensor& base, const Tensor& idx, const Tensor& src) {
  const int64_t M = idx.numel(), H = base.size(1);
  const size_t row_bytes = static_cast<size_t>(H) * dtype_size(base.dtype());
  Tensor out = base.clone();
  char* po = static_cast<char*>(out.raw_data());
  if (src.defined()) {
    copy_rows(po, idx.data<int64_t>(), static_cast<const char*>(src.raw_data()), nullptr, M,
              row_bytes);
  } else {
    for (int64_t i = 0; i < M; ++i)
      std::memset(po + idx.data<int64_t>()[i] * row_bytes, 0, row_bytes);
  }
  return out;
}

}  // namespace minivlm::cpu
