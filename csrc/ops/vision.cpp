// Vision-side ops built from views: patch embedding (conv2d with stride = kernel) as an im2col
// reshape plus one GEMM, and the SmolVLM pixel shuffle as a reshape/permute. Their backward comes
// from the view and matmul nodes.
#include "cuda/ops.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace minivlm::ops {

Tensor patch_embed(const Tensor& pixels, const Tensor& weight, const Tensor& bias) {
  MV_CHECK(pixels.dim() == 4, "patch_embed: pixels must be [B, C, H, W], got ", pixels.desc());
  MV_CHECK(weight.dim() == 4 && weight.size(2) == weight.size(3),
           "patch_embed: weight must be [D, C, p, p], got ", weight.desc());
  const int64_t B = pixels.size(0), C = pixels.size(1), H = pixels.size(2), W = pixels.size(3);
  const int64_t D = weight.size(0), p = weight.size(2);
  MV_CHECK(weight.size(1) == C, "patch_embed: weight ", shape_str(weight.shape()), " expects ",
           weight.size(1), " channels, pixels ", shape_str(pixels.shape()), " have ", C);
  MV_CHECK(H % p == 0 && W % p == 0, "patch_embed: image ", H, "x", W,
           " is not a multiple of the patch size ", p);
  const int64_t gh = H / p, gw = W / p;
  // [B, C, gh, p, gw, p] → [B, gh, gw, C, p, p]: each patch's pixels in the weight's (C, p, p)
  // order.
  const Tensor cols = pixels.reshape({B, C, gh, p, gw, p})
                          .permute({0, 2, 4, 1, 3, 5})
                          .reshape({B * gh * gw, C * p * p});
  return linear(cols, weight.reshape({D, C * p * p}), bias).reshape({B, gh * gw, D});
}

Tensor pixel_shuffle(const Tensor& x, int64_t r) {
  MV_CHECK(x.dim() >= 2, "pixel_shuffle: expected [..., S, D], got ", x.desc());
  MV_CHECK(r >= 1, "pixel_shuffle: factor must be >= 1, got ", r);
  const int64_t S = x.size(-2), D = x.size(-1);
  int64_t G = 0;
  while (G * G < S) ++G;
  MV_CHECK(G * G == S, "pixel_shuffle: ", S, " tokens do not form a square grid");
  MV_CHECK(G % r == 0, "pixel_shuffle: grid ", G, " is not divisible by factor ", r);
  if (r == 1) return x;
  if (x.device().is_cuda_backend()) return cuda::pixel_shuffle(x, G, r);
  const int64_t Gr = G / r;
  Shape lead(x.shape().begin(), x.shape().end() - 2);
  const int64_t nl = static_cast<int64_t>(lead.size());
  // in[(h2·r + dr)·G + (w2·r + dc)][d] viewed as [..., h2, dr, w2, dc, d];
  // out[h2·Gr + w2][(dr·r + dc)·D + d] is the order [..., h2, w2, dr, dc, d].
  Shape five = lead;
  for (int64_t v : {Gr, r, Gr, r, D}) five.push_back(v);
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < nl; ++i) perm.push_back(i);
  for (int64_t v : {0, 2, 1, 3, 4}) perm.push_back(nl + v);
  Shape out_shape = lead;
  out_shape.push_back(Gr * Gr);
  out_shape.push_back(r * r * D);
  return x.reshape(five).permute(perm).reshape(out_shape);
}

}  // namespace minivlm::ops
