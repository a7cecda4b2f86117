// The SmolVLM pixel shuffle as a copy through a permuted view: in[(h2·r + dr)·G + (w2·r + dc)][d]
// viewed as [..., h2, dr, w2, dc, d] is out[h2·Gr + w2][(dr·r + dc)·D + d] in the order
// [..., h2, w2, dr, dc, d]; the backward copies through the inverse permutation.
#include <vector>

#include "cpu/backend.h"

namespace minivlm::cpu {

namespace {

// The five-dimensional split of [..., G², D] and its permutation, lead dims kept in front.
struct ShuffleView {
  Shape split;                // lead + [Gr, r, Gr, r, D]
  std::vector<int64_t> perm;  // lead, then 0 2 1 3 4 of the five
  Shape out;                  // lead + [Gr², r²·D]
};

ShuffleView shuffle_view(const Shape& x_shape, int64_t G, int64_t r) {
  const int64_t Gr = G / r, D = x_shape.back();
  ShuffleView v;
  const Shape lead(x_shape.begin(), x_shape.end() - 2);
  v.split = lead;
  v.out = lead;
  for (size_t i = 0; i < lead.size(); ++i) v.perm.push_back(static_cast<int64_t>(i));
  for (int64_t s : {Gr, r, Gr, r, D}) v.split.push_back(s);
  for (int64_t p : {0, 2, 1, 3, 4}) v.perm.push_back(static_cast<int64_t>(lead.size()) + p);
  v.out.push_back(Gr * Gr);
  v.out.push_back(r * r * D);
  return v;
}

}  // namespace

Tensor CpuBackend::pixel_shuffle_forward(const Tensor& x, int64_t G, int64_t r) {
  const ShuffleView v = shuffle_view(x.shape(), G, r);
  return x.reshape(v.split).permute(v.perm).reshape(v.out);  // the last reshape copies
}

Tensor CpuBackend::pixel_shuffle_backward(const Tensor& dout, const Shape& x_shape, int64_t G,
                                          int64_t r) {
  const ShuffleView v = shuffle_view(x_shape, G, r);
  // dout viewed in the permuted order [..., h2, w2, dr, dc, d] goes back to [..., h2, dr, w2, dc,
  // d] (the permutation swaps two dimensions: it is its own inverse); the last reshape copies.
  Shape permuted(v.perm.size());
  for (size_t i = 0; i < v.perm.size(); ++i) permuted[i] = v.split[v.perm[i]];
  return dout.reshape(permuted).permute(v.perm).reshape(x_shape);
}

}  // namespace minivlm::cpu
