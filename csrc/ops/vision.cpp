// Vision-side ops: patch embedding (conv2d with stride = kernel) as an im2col reshape plus one
// GEMM, whose backward comes from the view and linear nodes, and the SmolVLM pixel shuffle, one
// node over the back-end's permutation.
#include "autograd/node.h"
#include "ops/checks.h"
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
  const int64_t S = x.size(-2);
  int64_t G = 0;
  while (G * G < S) ++G;
  MV_CHECK(G * G == S, "pixel_shuffle: ", S, " tokens do not form a square grid");
  MV_CHECK(G % r == 0, "pixel_shuffle: grid ", G, " is not divisible by factor ", r);
  if (r == 1) return x;
  Backend& be = detail::backend_of("pixel_shuffle", {&x});
  Tensor out = be.pixel_shuffle_forward(x.detach().contiguous(), G, r);
  const Shape in_shape = x.shape();
  return record(out, "pixel_shuffle", {x}, [in_shape, G, r, &be](const Tensor& g) {
    return std::vector<Tensor>{be.pixel_shuffle_backward(g.contiguous(), in_shape, G, r)};
  });
}

}  // namespace minivlm::ops
