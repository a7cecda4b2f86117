#include "data/batch.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace minivlm {

MicroBatch collate(const std::vector<Sample>& samples, std::vector<int64_t> indices, int32_t pad_id,
                   int image_size) {
  MV_CHECK(samples.size() == indices.size(), "collate: ", samples.size(), " samples but ",
           indices.size(), " indices");
  MicroBatch mb;
  mb.samples = std::move(indices);
  if (samples.empty()) return mb;

  const int64_t B = static_cast<int64_t>(samples.size());
  int64_t T = 0, n_images = 0;
  for (const Sample& s : samples) {
    T = std::max<int64_t>(T, static_cast<int64_t>(s.ids.size()));
    n_images += s.num_images;
  }
  std::vector<int64_t> ids(static_cast<size_t>(B * T), pad_id);  // [B, T]
  std::vector<int64_t> mask(static_cast<size_t>(B * T), 0);      // [B, T]
  for (int64_t b = 0; b < B; ++b) {
    const Sample& s = samples[static_cast<size_t>(b)];
    std::copy(s.ids.begin(), s.ids.end(), ids.begin() + b * T);
    std::copy(s.labels.begin(), s.labels.end(), mask.begin() + b * T);
    mb.batch.images_per_sample.push_back(s.num_images);
    mb.supervised_tokens += s.supervised_tokens();
  }
  mb.batch.ids = Tensor::from_vector(ids, {B, T});
  mb.batch.label_mask = Tensor::from_vector(mask, {B, T});

  if (n_images > 0) {
    const int64_t S = image_size, image_floats = 3 * S * S;
    mb.batch.pixels = Tensor::empty({n_images, 3, S, S});  // [n, 3, S, S]
    float* dst = mb.batch.pixels.data<float>();
    for (const Sample& s : samples) {
      MV_CHECK(static_cast<int64_t>(s.pixels.size()) == s.num_images * image_floats,
               "collate: ", s.num_images, " images of size ", S, " need ",
               s.num_images * image_floats, " floats, the sample holds ", s.pixels.size());
      std::memcpy(dst, s.pixels.data(), s.pixels.size() * sizeof(float));
      dst += s.pixels.size();
    }
  }
  return mb;
}

}  // namespace minivlm
