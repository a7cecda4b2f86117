#include "data/batch.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace minivlm {

MicroBatch collate(const std::vector<Sample>& samples, std::vector<int64_t> indices, int32_t pad_id,
                   int64_t tile_size) {
  MV_CHECK(samples.size() == indices.size(), "collate: ", samples.size(), " samples but ",
           indices.size(), " indices");
  MicroBatch mb;
  mb.samples = std::move(indices);
  if (samples.empty()) return mb;

  const int64_t B = static_cast<int64_t>(samples.size());
  int64_t T = 0;
  for (const Sample& s : samples) {
    T = std::max<int64_t>(T, static_cast<int64_t>(s.ids.size()));
    MV_CHECK(static_cast<int64_t>(s.tiles_per_image.size()) == s.num_images,
             "collate: a sample of ", s.num_images, " images has ", s.tiles_per_image.size(),
             " tile counts");
  }
  std::vector<int64_t> ids(static_cast<size_t>(B * T), pad_id);  // [B, T]
  std::vector<int64_t> mask(static_cast<size_t>(B * T), 0);      // [B, T]
  for (int64_t b = 0; b < B; ++b) {
    const Sample& s = samples[static_cast<size_t>(b)];
    std::copy(s.ids.begin(), s.ids.end(), ids.begin() + b * T);
    std::copy(s.labels.begin(), s.labels.end(), mask.begin() + b * T);
    mb.batch.images_per_sample.push_back(s.num_images);
    mb.batch.tiles_per_image.insert(mb.batch.tiles_per_image.end(), s.tiles_per_image.begin(),
                                    s.tiles_per_image.end());
    mb.supervised_tokens += s.supervised_tokens();
  }
  mb.batch.ids = Tensor::from_vector(ids, {B, T});
  mb.batch.label_mask = Tensor::from_vector(mask, {B, T});

  const std::vector<int64_t>& tiles = mb.batch.tiles_per_image;
  const int64_t n_tiles = std::accumulate(tiles.begin(), tiles.end(), int64_t{0});
  if (n_tiles > 0) {
    const int64_t S = tile_size, tile_floats = 3 * S * S;
    mb.batch.pixels = Tensor::empty({n_tiles, 3, S, S});  // [n_tiles, 3, S, S]
    float* dst = mb.batch.pixels.data<float>();
    for (const Sample& s : samples) {
      const int64_t n =
          std::accumulate(s.tiles_per_image.begin(), s.tiles_per_image.end(), int64_t{0});
      MV_CHECK(static_cast<int64_t>(s.pixels.size()) == n * tile_floats, "collate: ", n,
               " tiles of size ", S, " need ", n * tile_floats, " floats, the sample holds ",
               s.pixels.size());
      std::memcpy(dst, s.pixels.data(), s.pixels.size() * sizeof(float));
      dst += s.pixels.size();
    }
  }
  return mb;
}

}  // namespace minivlm
