#include "core/strided.h"

#include <cstring>

namespace minivlm::detail {

namespace {

double load(DType t, const char* base, int64_t i) {
  switch (t) {
    case DType::f32:
      return reinterpret_cast<const float*>(base)[i];
    case DType::f64:
      return reinterpret_cast<const double*>(base)[i];
    case DType::bf16:
      return bf16_to_f32(reinterpret_cast<const uint16_t*>(base)[i]);
    case DType::f16:
      return f16_to_f32(reinterpret_cast<const uint16_t*>(base)[i]);
    case DType::i32:
      return reinterpret_cast<const int32_t*>(base)[i];
    case DType::i64:
      return static_cast<double>(reinterpret_cast<const int64_t*>(base)[i]);
  }
  return 0;
}

void store(DType t, char* base, int64_t i, double v) {
  switch (t) {
    case DType::f32:
      reinterpret_cast<float*>(base)[i] = static_cast<float>(v);
      return;
    case DType::f64:
      reinterpret_cast<double*>(base)[i] = v;
      return;
    case DType::bf16:
      reinterpret_cast<uint16_t*>(base)[i] = f32_to_bf16(static_cast<float>(v));
      return;
    case DType::f16:
      reinterpret_cast<uint16_t*>(base)[i] = f32_to_f16(static_cast<float>(v));
      return;
    case DType::i32:
      reinterpret_cast<int32_t*>(base)[i] = static_cast<int32_t>(v);
      return;
    case DType::i64:
      reinterpret_cast<int64_t*>(base)[i] = static_cast<int64_t>(v);
      return;
  }
}

template <typename U>
void copy_same(const Tensor& src, const Tensor& dst) {
  const U* s = static_cast<const U*>(src.storage()->data);
  U* d = static_cast<U*>(dst.storage()->data);
  for_each_offset2(dst.shape(), src.strides(), src.offset(), dst.strides(), dst.offset(),
                   [&](int64_t a, int64_t b) { d[b] = s[a]; });
}

}  // namespace

void strided_convert(const Tensor& src, const Tensor& dst) {
  if (src.dtype() == dst.dtype()) {
    // Same element type: move bits (exact for every dtype, NaN payloads included).
    switch (dtype_size(src.dtype())) {
      case 2:
        copy_same<uint16_t>(src, dst);
        return;
      case 4:
        copy_same<uint32_t>(src, dst);
        return;
      case 8:
        copy_same<uint64_t>(src, dst);
        return;
    }
  }
  const char* s = static_cast<const char*>(src.storage()->data);
  char* d = static_cast<char*>(dst.storage()->data);
  const DType ts = src.dtype(), td = dst.dtype();
  for_each_offset2(dst.shape(), src.strides(), src.offset(), dst.strides(), dst.offset(),
                   [&](int64_t a, int64_t b) { store(td, d, b, load(ts, s, a)); });
}

void strided_fill(const Tensor& dst, double value) {
  char* d = static_cast<char*>(dst.storage()->data);
  const DType t = dst.dtype();
  for_each_offset2(dst.shape(), dst.strides(), dst.offset(), dst.strides(), dst.offset(),
                   [&](int64_t, int64_t b) { store(t, d, b, value); });
}

}  // namespace minivlm::detail
