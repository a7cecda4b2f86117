// minivlm make-dataset: writes the synthetic shapes dataset (data/synthetic.h), the default data of
// the demo and the tests: images/, pretrain.jsonl, sft.jsonl, eval.jsonl, scenes.jsonl, meta.json.
#include <chrono>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "data/synthetic.h"
#include "tools/command.h"

namespace minivlm {

namespace {

uint64_t parse_seed(const std::string& s) {
  size_t pos = 0;
  uint64_t v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  MV_CHECK(pos == s.size() && !s.empty() && s[0] != '-',
           "minivlm make-dataset: option --seed expects a non-negative integer, got '", s, "'");
  return v;
}

}  // namespace

MINIVLM_COMMAND("make-dataset",
                "write the synthetic shapes dataset (images, pretrain/sft/eval JSONL)") {
  cli::Args a(args,
              {{"out", true},
               {"seed", true},
               {"image-size", true},
               {"train-images", true},
               {"eval-images", true}},
              "minivlm make-dataset");
  synthetic::Options o;
  o.seed = parse_seed(a.get("seed", "42"));
  o.image_size = a.get_int("image-size", o.image_size);
  o.train_images = a.get_int("train-images", o.train_images);
  o.eval_images = a.get_int("eval-images", o.eval_images);
  const std::string out = a.get("out");
  const auto start = std::chrono::steady_clock::now();
  const synthetic::Dataset ds = synthetic::build_dataset(o);
  synthetic::write_dataset(ds, o, out);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "wrote %s in %.1f s: %zu train + %zu eval images (%dx%d), %zu pretrain, %zu sft, %zu eval "
      "samples (seed %llu)\n",
      out.c_str(), secs, ds.train_images.size(), ds.eval_images.size(), o.image_size, o.image_size,
      ds.pretrain.size(), ds.sft.size(), ds.eval.size(), static_cast<unsigned long long>(o.seed));
  return 0;
}

}  // namespace minivlm
