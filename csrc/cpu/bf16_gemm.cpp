// The two bf16 GEMM paths of cpu/bf16_gemm.h and the run-time choice between them.
#include "cpu/bf16_gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "cpu/bf16.h"
#include "cpu/cpu_features.h"
#include "cpu/gemm.h"

namespace minivlm::cpu {

namespace {

// ---- oneDNN ----

void dnnl_check(dnnl_status_t st, const char* what) {
  MV_CHECK(st == dnnl_success, "bf16 gemm: oneDNN ", what, " failed (status ", static_cast<int>(st),
           ")");
}

dnnl_engine_t engine() {
  static dnnl_engine_t e = [] {
    dnnl_engine_t made = nullptr;
    dnnl_check(dnnl_engine_create(&made, dnnl_cpu, 0), "engine creation");
    return made;
  }();
  return e;
}

// One shape and layout of product.
using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;

struct Matmul {
  dnnl_primitive_t prim = nullptr;  // null: oneDNN has no implementation for this product
  dnnl_memory_desc_t a{}, b{}, c{};
  std::string impl;
  Matmul() = default;
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;
  ~Matmul() {
    if (prim) dnnl_primitive_destroy(prim);
  }
};

// The matmul primitive for a product; prim null where oneDNN has none.
std::shared_ptr<const Matmul> make_matmul(const Key& key) {
  const auto [ta, tb, m, n, k, lda, ldb, ldc] = key;
  auto mm = std::make_shared<Matmul>();
  const dnnl_dims_t a_dims = {m, k}, b_dims = {k, n}, c_dims = {m, n};
  const dnnl_dims_t a_strides = {ta ? 1 : lda, ta ? lda : 1};
  const dnnl_dims_t b_strides = {tb ? 1 : ldb, tb ? ldb : 1};
  const dnnl_dims_t c_strides = {ldc, 1};
  dnnl_check(dnnl_memory_desc_init_by_strides(&mm->a, 2, a_dims, dnnl_bf16, a_strides), "memory");
  dnnl_check(dnnl_memory_desc_init_by_strides(&mm->b, 2, b_dims, dnnl_bf16, b_strides), "memory");
  dnnl_check(dnnl_memory_desc_init_by_strides(&mm->c, 2, c_dims, dnnl_bf16, c_strides), "memory");
  dnnl_matmul_desc_t desc;
  dnnl_check(dnnl_matmul_desc_init(&desc, &mm->a, &mm->b, nullptr, &mm->c), "matmul descriptor");
  dnnl_primitive_desc_t pd = nullptr;
  if (dnnl_primitive_desc_create(&pd, &desc, nullptr, engine(), nullptr) != dnnl_success) return mm;
  const char* impl = nullptr;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
    mm->impl = impl;
  if (dnnl_primitive_create(&mm->prim, pd) != dnnl_success) mm->prim = nullptr;
  dnnl_primitive_desc_destroy(pd);
  return mm;
}

// Primitives by product, built on first use. Training repeats a few dozen shapes; a run that
// keeps changing them (varied sequence lengths) starts the cache afresh past kMaxCached (a
// primitive still running elsewhere lives on through its shared_ptr).
class MatmulCache {
 public:
  std::shared_ptr<const Matmul> get(const Key& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    if (cache_.size() >= kMaxCached) cache_.clear();
    return cache_.emplace(key, make_matmul(key)).first->second;
  }

 private:
  static constexpr size_t kMaxCached = 1024;
  std::mutex mu_;
  std::map<Key, std::shared_ptr<const Matmul>> cache_;
};

MatmulCache& matmul_cache() {
  static MatmulCache c;
  return c;
}

// Runs the cached primitive; false where oneDNN has none for this product (or only reference
// code, unless `any_impl`).
bool gemm_onednn(const Key& key, const uint16_t* a, const uint16_t* b, uint16_t* c, bool any_impl) {
  const std::shared_ptr<const Matmul> mm = matmul_cache().get(key);
  if (mm->prim == nullptr || (!any_impl && mm->impl.rfind("ref", 0) == 0)) return false;
  thread_local dnnl_stream_t stream = [] {
    dnnl_stream_t s = nullptr;
    dnnl_check(dnnl_stream_create(&s, engine(), dnnl_stream_default_flags), "stream creation");
    return s;
  }();
  dnnl_memory_t ma = nullptr, mb = nullptr, mc = nullptr;
  dnnl_check(dnnl_memory_create(&ma, &mm->a, engine(), const_cast<uint16_t*>(a)), "memory");
  dnnl_check(dnnl_memory_create(&mb, &mm->b, engine(), const_cast<uint16_t*>(b)), "memory");
  dnnl_check(dnnl_memory_create(&mc, &mm->c, engine(), c), "memory");
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
  const dnnl_status_t st = dnnl_primitive_execute(mm->prim, stream, 3, args);
  const dnnl_status_t wt = st == dnnl_success ? dnnl_stream_wait(stream) : st;
  dnnl_memory_destroy(ma);
  dnnl_memory_destroy(mb);
  dnnl_memory_destroy(mc);
  dnnl_check(wt, "bf16 matmul execution");
  return true;
}

// ---- widened: fp32 copies and the fp32 GEMM ----

// Grows on demand and is kept: a training step's products reuse the same pages.
float* scratch(std::vector<float>& buf, int64_t n) {
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

// rows × cols of a bf16 matrix with leading dimension ld → packed fp32 [rows, cols].
void widen_matrix(const uint16_t* src, int64_t rows, int64_t cols, int64_t ld, float* dst) {
#pragma omp parallel for if (rows * cols > (1 << 16)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) bf16_to_f32(src + r * ld, dst + r * cols, cols);
}

void gemm_widened(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const uint16_t* a, int64_t lda,
                  const uint16_t* b, int64_t ldb, uint16_t* c, int64_t ldc) {
  thread_local std::vector<float> fa_buf, fb_buf, fc_buf;
  const int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  float* fa = scratch(fa_buf, ar * ac);
  float* fb = scratch(fb_buf, br * bc);
  float* fc = scratch(fc_buf, m * n);
  widen_matrix(a, ar, ac, lda, fa);
  widen_matrix(b, br, bc, ldb, fb);
  gemm<float>(ta, tb, m, n, k, 1.0f, fa, ac, fb, bc, 0.0f, fc, n);
#pragma omp parallel for if (m * n > (1 << 16)) schedule(static)
  for (int64_t r = 0; r < m; ++r) f32_to_bf16(fc + r * n, c + r * ldc, n);
}

// ---- the choice ----

struct Choice {
  Bf16GemmPath path;
  std::string why;
};

Choice choose() {
  const bool avx512 = cpu_features().avx512_bf16, amx = cpu_features().amx_bf16;
  if (!avx512 && !amx)
    return {Bf16GemmPath::widened,
            "widened to fp32 for the fp32 GEMM (the CPU has neither AVX512-BF16 nor AMX-BF16)"};
  std::string impl;
  if (!onednn_bf16_matmul_exists(&impl) || impl.rfind("ref", 0) == 0)
    return {Bf16GemmPath::widened,
            "widened to fp32 for the fp32 GEMM (oneDNN has no fast bf16 matmul here: " +
                (impl.empty() ? std::string("none") : impl) + ")"};
  return {Bf16GemmPath::onednn, std::string("oneDNN bf16 matmul (") + impl +
                                    "; CPU: " + (amx ? "AMX-BF16" : "AVX512-BF16") + ")"};
}

Choice& choice() {
  static Choice c = choose();
  return c;
}

std::atomic<Bf16GemmPath>& active() {
  static std::atomic<Bf16GemmPath> p{choice().path};
  return p;
}

}  // namespace

bool onednn_bf16_matmul_exists(std::string* impl) {
  const std::shared_ptr<const Matmul> mm =
      matmul_cache().get(Key{false, true, 16, 16, 16, 16, 16, 16});
  if (impl) *impl = mm->impl;
  return mm->prim != nullptr;
}

Bf16GemmPath bf16_gemm_path() { return active().load(); }

std::string bf16_gemm_description() {
  return bf16_gemm_path() == choice().path          ? choice().why
         : bf16_gemm_path() == Bf16GemmPath::onednn ? "oneDNN bf16 matmul (forced)"
                                                    : "widened to fp32 for the fp32 GEMM (forced)";
}

Bf16GemmPath set_bf16_gemm_path(Bf16GemmPath path) {
  MV_CHECK(path != Bf16GemmPath::onednn || onednn_bf16_matmul_exists(),
           "bf16 gemm: oneDNN has no bf16 matmul on this CPU");
  return active().exchange(path);
}

void gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const uint16_t* a, int64_t lda,
               const uint16_t* b, int64_t ldb, uint16_t* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t r = 0; r < m; ++r) std::memset(c + r * ldc, 0, static_cast<size_t>(n) * 2);
    return;
  }
  const Bf16GemmPath path = bf16_gemm_path();
  // A forced oneDNN path (tests) takes whatever implementation oneDNN has.
  const bool forced = path != choice().path;
  if (path == Bf16GemmPath::onednn &&
      gemm_onednn(Key{ta, tb, m, n, k, lda, ldb, ldc}, a, b, c, forced))
    return;
  gemm_widened(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace minivlm::cpu
