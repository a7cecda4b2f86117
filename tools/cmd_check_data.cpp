// minivlm check-data: reads a whole dataset as training would (data/data_check.h) and prints what
// a run would meet: usable and bad samples, the bad ones by reason with their lines, token lengths,
// images per sample and the samples over max_seq_len. Exits 1 when more than --max-bad-fraction
// of the samples are bad (default as training's), so a script can gate a run on it.
#include <cstdio>
#include <string>

#include "core/error.h"
#include "data/data_check.h"
#include "io/model_io.h"
#include "text/tokenizer.h"
#include "tools/command.h"

namespace minivlm {

MINIVLM_COMMAND("check-data",
                "read a dataset as training would and report its bad samples and lengths") {
  cli::Args a(args,
              {{"data", true},
               {"images", true},
               {"model", true},
               {"max-seq-len", true},
               {"workers", true},
               {"max-bad-fraction", true},
               {"max-locations", true},
               {"over-long", true},
               {"allow-images-outside", false},
               {"ignore-unreferenced-images", false}},
              "minivlm check-data");
  const LoadedModel m = load_model_dir(a.get("model"));
  const int64_t max_seq_len = a.get_int("max-seq-len", 2048);
  SampleFormat fmt = SampleFormat::for_model(m.config, max_seq_len);
  apply_data_flags(a, "minivlm check-data", fmt);
  const double max_bad_fraction = a.get_double("max-bad-fraction", 0.01);
  MV_CHECK(max_bad_fraction >= 0 && max_bad_fraction <= 1,
           "minivlm check-data: --max-bad-fraction must be in [0, 1], got ", max_bad_fraction);
  if (fmt.max_seq_len < max_seq_len)
    std::fprintf(stderr,
                 "note: max_seq_len %lld exceeds the model's context "
                 "(llm.max_position_embeddings %lld); checking against %lld\n",
                 static_cast<long long>(max_seq_len), static_cast<long long>(fmt.max_seq_len),
                 static_cast<long long>(fmt.max_seq_len));

  const Dataset data(a.get("data"), a.get("images", ""), *m.tokenizer, fmt);
  DataCheckOptions opt;
  opt.workers = a.get_int("workers", 1);
  opt.max_locations = a.get_int("max-locations", 5);
  opt.progress = [](size_t done, size_t total) {
    std::fprintf(stderr, "check-data: %zu of %zu samples read\n", done, total);
  };
  const DataCheckReport rep = check_dataset(data, opt);
  std::fputs(rep.text().c_str(), stdout);
  std::fflush(stdout);
  if (rep.samples == 0) {
    std::fprintf(stderr, "check-data: %s holds no sample\n", rep.path.c_str());
    return 1;
  }
  if (rep.bad_fraction() > max_bad_fraction) {
    std::fprintf(stderr,
                 "check-data: %lld of %lld samples are bad, more than max_bad_fraction %g "
                 "(training would stop)\n",
                 static_cast<long long>(rep.bad_samples()), static_cast<long long>(rep.samples),
                 max_bad_fraction);
    return 1;
  }
  return 0;
}

}  // namespace minivlm
