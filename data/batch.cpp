#include "data/batch.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace minivlm {

namespace {

int64_t tile_count(const Sample& s) {
  return std::accumulate(s.tiles_per_image.begin(), s.tiles_per_image.end(), int64_t{0});
}

// Row r's samples, in order: unpacked one per row, packed by first fit.
std::vector<std::vector<size_t>> place(const std::vector<Sample>& samples, int64_t pack_len) {
  std::vector<std::vector<size_t>> rows;
  std::vector<int64_t> used;
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto n = static_cast<int64_t>(samples[i].ids.size());
    size_t r = 0;
    if (pack_len > 0)
      while (r < rows.size() && used[r] + n > pack_len) ++r;
    else
      r = rows.size();
    if (r == rows.size()) {
      rows.emplace_back();
      used.push_back(0);
    }
    rows[r].push_back(i);
    used[r] += n;
  }
  return rows;
}

}  // namespace

MicroBatch collate(const std::vector<Sample>& samples, std::vector<int64_t> indices, int32_t pad_id,
                   int64_t tile_size, int64_t pack_len) {
  MV_CHECK(samples.size() == indices.size(), "collate: ", samples.size(), " samples but ",
           indices.size(), " indices");
  MV_CHECK(pack_len >= 0, "collate: pack_len must not be negative, got ", pack_len);
  MicroBatch mb;
  mb.samples = std::move(indices);
  if (samples.empty()) return mb;

  for (const Sample& s : samples)
    MV_CHECK(static_cast<int64_t>(s.tiles_per_image.size()) == s.num_images,
             "collate: a sample of ", s.num_images, " images has ", s.tiles_per_image.size(),
             " tile counts");
  const std::vector<std::vector<size_t>> rows = place(samples, pack_len);
  const auto B = static_cast<int64_t>(rows.size());
  int64_t T = 0;
  for (const std::vector<size_t>& row : rows) {
    int64_t n = 0;
    for (size_t i : row) n += static_cast<int64_t>(samples[i].ids.size());
    T = std::max(T, n);
  }
  std::vector<int64_t> ids(static_cast<size_t>(B * T), pad_id);  // [B, T]
  std::vector<int64_t> mask(static_cast<size_t>(B * T), 0);      // [B, T]
  mb.sample_rows.resize(samples.size());
  std::vector<const Sample*> in_order;  // the samples row by row: the order of images and tiles
  for (int64_t b = 0; b < B; ++b) {
    int64_t at = b * T, images = 0;
    std::vector<int64_t> bounds;
    for (size_t i : rows[static_cast<size_t>(b)]) {
      const Sample& s = samples[i];
      bounds.push_back(at - b * T);
      std::copy(s.ids.begin(), s.ids.end(), ids.begin() + at);
      std::copy(s.labels.begin(), s.labels.end(), mask.begin() + at);
      if (pack_len > 0) mask[static_cast<size_t>(at)] = 0;  // nothing of its sample precedes it
      at += static_cast<int64_t>(s.ids.size());
      images += s.num_images;
      mb.batch.tiles_per_image.insert(mb.batch.tiles_per_image.end(), s.tiles_per_image.begin(),
                                      s.tiles_per_image.end());
      mb.supervised_tokens += s.supervised_tokens();
      mb.tokens += static_cast<int64_t>(s.ids.size());
      mb.sample_rows[i] = b;
      in_order.push_back(&s);
    }
    bounds.push_back(at - b * T);
    mb.batch.images_per_sample.push_back(images);
    if (pack_len > 0) mb.batch.seq_bounds.push_back(std::move(bounds));
  }
  mb.batch.ids = Tensor::from_vector(ids, {B, T});
  mb.batch.label_mask = Tensor::from_vector(mask, {B, T});

  const std::vector<int64_t>& tiles = mb.batch.tiles_per_image;
  const int64_t n_tiles = std::accumulate(tiles.begin(), tiles.end(), int64_t{0});
  if (n_tiles > 0) {
    const int64_t S = tile_size, tile_floats = 3 * S * S;
    mb.batch.pixels = Tensor::empty({n_tiles, 3, S, S});  // [n_tiles, 3, S, S]
    float* dst = mb.batch.pixels.data<float>();
    for (const Sample* s : in_order) {
      const int64_t n = tile_count(*s);
      MV_CHECK(static_cast<int64_t>(s->pixels.size()) == n * tile_floats, "collate: ", n,
               " tiles of size ", S, " need ", n * tile_floats, " floats, the sample holds ",
               s->pixels.size());
      std::memcpy(dst, s->pixels.data(), s->pixels.size() * sizeof(float));
      dst += s->pixels.size();
    }
  }
  return mb;
}

}  // namespace minivlm
