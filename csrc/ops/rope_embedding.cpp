// Rotary position embedding (half-split) and token embedding.
#include <cstdint>
#include <limits>

#include "autograd/node.h"
#include "ops/checks.h"
#include "ops/ops.h"

namespace minivlm::ops {

Tensor rope(const Tensor& x, double theta, int64_t start_pos) {
  Backend& be = detail::backend_of("rope", {&x});
  MV_CHECK(x.dim() == 4, "rope: expected [B, T, heads, head_dim], got ", x.desc());
  MV_CHECK(x.size(3) % 2 == 0, "rope: head_dim must be even, got ", x.size(3));
  Tensor out = be.rope(x.detach().contiguous(), theta, start_pos, Tensor(), false);
  // The transpose of a rotation is the rotation by the opposite angle.
  return record(out, "rope", {x}, [theta, start_pos, &be](const Tensor& g) {
    return std::vector<Tensor>{be.rope(g.contiguous(), theta, start_pos, Tensor(), true)};
  });
}

Tensor rope_at(const Tensor& x, double theta, const Tensor& positions) {
  Backend& be = detail::backend_of("rope", {&x});
  MV_CHECK(x.dim() == 4, "rope: expected [B, T, heads, head_dim], got ", x.desc());
  MV_CHECK(x.size(3) % 2 == 0, "rope: head_dim must be even, got ", x.size(3));
  MV_CHECK(positions.dim() == 2 && positions.size(0) == x.size(0) && positions.size(1) == x.size(1),
           "rope: positions must be [", x.size(0), ", ", x.size(1), "] for x ", x.desc(), ", got ",
           positions.desc());
  const std::vector<int64_t> pv = detail::index_values("rope", "positions", positions);
  for (size_t i = 0; i < pv.size(); ++i)
    MV_CHECK(pv[i] >= 0 && pv[i] <= std::numeric_limits<int32_t>::max(), "rope: position ", pv[i],
             " at index ", i, " is outside [0, 2^31)");
  const Tensor pos = be.indices(pv, x.device());
  Tensor out = be.rope(x.detach().contiguous(), theta, 0, pos, false);
  return record(out, "rope", {x}, [theta, pos, &be](const Tensor& g) {
    return std::vector<Tensor>{be.rope(g.contiguous(), theta, 0, pos, true)};
  });
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  Backend& be = detail::backend_of("embedding", {&weight});
  MV_CHECK(weight.dim() == 2, "embedding: weight must be [vocab, hidden], got ", weight.desc());
  const std::vector<int64_t> idv = detail::index_values("embedding", "ids", ids);
  const int64_t V = weight.size(0), H = weight.size(1);
  for (size_t i = 0; i < idv.size(); ++i)
    MV_CHECK(idv[i] >= 0 && idv[i] < V, "embedding: token id ", idv[i], " at position ", i,
             " is outside the vocabulary [0, ", V, ")");
  const Tensor idx = be.indices(idv, weight.device());
  Shape out_shape = ids.shape();
  out_shape.push_back(H);
  Tensor out = be.embedding_forward(weight.detach().contiguous(), idx).reshape(out_shape);
  return record(out, "embedding", {weight, ids}, [idx, V, H, &be](const Tensor& g) {
    return std::vector<Tensor>{be.embedding_backward(g.contiguous().reshape({-1, H}), idx, V),
                               Tensor()};
  });
}

}  // namespace minivlm::ops
