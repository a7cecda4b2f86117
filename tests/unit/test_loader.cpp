// Loader: epoch permutation, rank sharding, collation, prefetch order, bad-sample accounting and
// resume. Order goldens come from scripts/reference/loader_order.py.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/error.h"
#include "data/batch.h"
#include "data/loader.h"
#include "data/prefetch.h"
#include "test_dataset_fixtures.h"

namespace minivlm {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using testing::ThrowsMessage;
using namespace testing_data;

// n records; answers of 1–5 words so lengths differ; every third record has an image (four
// distinct PNGs); the records at `bad` are malformed JSON.
struct TestData {
  ScratchDir dir;
  std::string path;
  std::unique_ptr<Dataset> ds;

  explicit TestData(int n, const std::set<int>& bad = {}, int64_t max_seq_len = 256) {
    for (int k = 0; k < 4; ++k) write_png(dir.image("img" + std::to_string(k) + ".png"), 16, 20, k);
    std::string text;
    for (int i = 0; i < n; ++i) {
      std::string answer = "Answer";
      for (int w = 0; w < i % 5; ++w) answer += " number " + std::to_string(i);
      if (bad.count(i))
        text += "{\"conversations\": oops " + std::to_string(i) + "\n";
      else
        text += record("Question " + std::to_string(i) + "?", answer,
                       i % 3 == 0 ? "\"img" + std::to_string(i % 4) + ".png\"" : "") +
                "\n";
    }
    path = dir.file("data.jsonl");
    write_file(path, text);
    ds = std::make_unique<Dataset>(path, dir.images(), minimind(), small_format(max_seq_len));
  }
};

LoaderOptions options(int64_t micro, int64_t accum, int64_t world = 1, int64_t rank = 0) {
  LoaderOptions o;
  o.micro_batch = micro;
  o.grad_accum = accum;
  o.world_size = world;
  o.rank = rank;
  o.max_bad_fraction = 1.0;
  o.warn = [](const std::string&) {};
  return o;
}

void expect_same_batch(const MicroBatch& a, const MicroBatch& b, const std::string& where) {
  SCOPED_TRACE(where);
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_EQ(a.skipped, b.skipped);
  EXPECT_EQ(a.supervised_tokens, b.supervised_tokens);
  ASSERT_EQ(a.empty(), b.empty());
  if (a.empty()) return;
  EXPECT_EQ(a.batch.ids.shape(), b.batch.ids.shape());
  EXPECT_EQ(a.batch.ids.to_int_vector(), b.batch.ids.to_int_vector());
  EXPECT_EQ(a.batch.label_mask.to_int_vector(), b.batch.label_mask.to_int_vector());
  EXPECT_EQ(a.batch.images_per_sample, b.batch.images_per_sample);
  ASSERT_EQ(a.batch.pixels.defined(), b.batch.pixels.defined());
  if (a.batch.pixels.defined()) {
    EXPECT_EQ(a.batch.pixels.to_float_vector(), b.batch.pixels.to_float_vector());
  }
}

void expect_same_step(const Step& a, const Step& b, const std::string& where) {
  EXPECT_EQ(a.epoch, b.epoch) << where;
  EXPECT_EQ(a.step_in_epoch, b.step_in_epoch) << where;
  EXPECT_EQ(a.epoch_end.has_value(), b.epoch_end.has_value()) << where;
  ASSERT_EQ(a.micro.size(), b.micro.size()) << where;
  for (size_t m = 0; m < a.micro.size(); ++m)
    expect_same_batch(a.micro[m], b.micro[m], where + " micro " + std::to_string(m));
}

TEST(EpochPermutation, MatchesReference) {
  EXPECT_THAT(epoch_permutation(10, 42, 0), ElementsAre(3, 2, 5, 9, 1, 8, 4, 7, 0, 6));
  EXPECT_THAT(epoch_permutation(10, 42, 1), ElementsAre(1, 9, 0, 8, 6, 3, 5, 4, 2, 7));
  EXPECT_THAT(epoch_permutation(10, 7, 0), ElementsAre(5, 4, 8, 0, 2, 3, 6, 9, 7, 1));
  EXPECT_EQ(epoch_permutation(37, 42, 5),
            (std::vector<uint32_t>{27, 29, 21, 26, 22, 2,  3,  7,  9,  32, 15, 25, 12,
                                   6,  35, 14, 23, 0,  13, 17, 33, 18, 24, 31, 28, 34,
                                   16, 30, 5,  36, 19, 1,  20, 11, 8,  10, 4}));
}

TEST(EpochPermutation, DeterministicAndDifferentAcrossEpochsAndSeeds) {
  const std::vector<uint32_t> a = epoch_permutation(1000, 42, 3);
  EXPECT_EQ(a, epoch_permutation(1000, 42, 3));
  std::vector<uint32_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_NE(a, epoch_permutation(1000, 42, 4));
  EXPECT_NE(a, epoch_permutation(1000, 43, 3));
  EXPECT_NE(epoch_permutation(1000, 0, 0), epoch_permutation(1000, 0, 1));
}

TEST(Loader, RankSlicesMatchReference) {
  TestData d(40);
  const std::map<std::pair<int, int>, std::vector<int64_t>> expected = {
      {{0, 0}, {35, 5}}, {{0, 1}, {27, 34}}, {{1, 0}, {25, 0}}, {{1, 1}, {11, 8}}};
  for (const auto& [key, want] : expected) {
    const auto [m, r] = key;
    const Loader loader(*d.ds, options(2, 2, 2, r));
    EXPECT_EQ(loader.slice(2, 3, m), want) << "micro " << m << " rank " << r;
  }
}

// Whatever the split of G = 16 over ranks and accumulation, the ranks' micro-batches of a step
// are disjoint and together are the world-1 global batch; rank r's micro-step m is world-1
// micro-batch m·world + r exactly, padding included.
TEST(Loader, ShardsPartitionTheWorldOneGlobalBatch) {
  TestData d(70);
  Loader single(*d.ds, options(2, 8));
  EXPECT_EQ(single.global_batch(), 16);
  EXPECT_EQ(single.steps_per_epoch(), 4);  // 70 / 16: the last 6 samples of an epoch are dropped
  std::vector<Step> reference;
  for (int s = 0; s < 5; ++s) reference.push_back(single.next_step());
  for (int s = 0; s < 5; ++s) {
    const std::vector<uint32_t> perm = epoch_permutation(70, 42, s / 4);
    std::vector<int64_t> got;
    for (const MicroBatch& mb : reference[s].micro)
      got.insert(got.end(), mb.samples.begin(), mb.samples.end());
    const int64_t begin = (s % 4) * 16;
    EXPECT_EQ(got, std::vector<int64_t>(perm.begin() + begin, perm.begin() + begin + 16));
  }
  ASSERT_TRUE(reference[3].epoch_end);
  EXPECT_EQ(reference[3].epoch_end->samples, 64);
  EXPECT_EQ(reference[4].epoch, 1);

  for (const auto& [world, accum] : {std::pair{2, 4}, std::pair{4, 2}, std::pair{8, 1}}) {
    std::vector<std::unique_ptr<Loader>> ranks;
    for (int r = 0; r < world; ++r)
      ranks.push_back(std::make_unique<Loader>(*d.ds, options(2, accum, world, r)));
    for (int s = 0; s < 5; ++s) {
      std::multiset<int64_t> all;
      for (int r = 0; r < world; ++r) {
        const Step step = ranks[r]->next_step();
        ASSERT_EQ(step.micro.size(), static_cast<size_t>(accum));
        for (int m = 0; m < accum; ++m) {
          const MicroBatch& mb = step.micro[m];
          all.insert(mb.samples.begin(), mb.samples.end());
          expect_same_batch(mb, reference[s].micro[m * world + r],
                            "world " + std::to_string(world) + " step " + std::to_string(s) +
                                " rank " + std::to_string(r) + " micro " + std::to_string(m));
        }
      }
      std::multiset<int64_t> want;
      for (const MicroBatch& mb : reference[s].micro)
        want.insert(mb.samples.begin(), mb.samples.end());
      EXPECT_EQ(all, want) << "world " << world << " step " << s;
      EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()).size(), 16u);
    }
  }
}

TEST(Collate, RightPadsAndConcatenatesImages) {
  const std::vector<Sample> samples = {make_sample({5, 6, 7}, {0, 1, 1}, 1, 100.f),
                                       make_sample({8, 9}, {0, 1}, 0, 0.f),
                                       make_sample({1, 2, 3, 4}, {0, 0, 1, 1}, 2, 200.f)};
  const MicroBatch mb = collate(samples, {11, 4, 9}, 0, 2);
  EXPECT_FALSE(mb.empty());
  EXPECT_EQ(mb.batch.ids.shape(), (Shape{3, 4}));
  EXPECT_EQ(mb.batch.ids.dtype(), DType::i64);
  EXPECT_THAT(mb.batch.ids.to_int_vector(), ElementsAre(5, 6, 7, 0, 8, 9, 0, 0, 1, 2, 3, 4));
  EXPECT_THAT(mb.batch.label_mask.to_int_vector(), ElementsAre(0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1));
  EXPECT_THAT(mb.batch.images_per_sample, ElementsAre(1, 0, 2));
  EXPECT_THAT(mb.batch.tiles_per_image, ElementsAre(1, 1, 1));
  EXPECT_THAT(mb.samples, ElementsAre(11, 4, 9));
  EXPECT_EQ(mb.supervised_tokens, 5);
  EXPECT_EQ(mb.batch.supervised_tokens(), 5);
  ASSERT_EQ(mb.batch.pixels.shape(), (Shape{3, 3, 2, 2}));
  const std::vector<float> px = mb.batch.pixels.to_float_vector();
  EXPECT_EQ(px[0], 100.f);
  EXPECT_EQ(px[11], 111.f);
  EXPECT_EQ(px[12], 200.f);
  EXPECT_EQ(px[35], 223.f);

  const MicroBatch text_only = collate({make_sample({3}, {1}, 0, 0.f)}, {0}, 7, 2);
  EXPECT_FALSE(text_only.batch.pixels.defined());
  EXPECT_EQ(text_only.supervised_tokens, 0);  // position 0 has no predecessor

  const MicroBatch none = collate({}, {}, 0, 2);
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(none.batch.ids.defined());
  EXPECT_TRUE(none.batch.images_per_sample.empty());
}

// The loader's rows are the dataset's samples, padded with the tokenizer's <|endoftext|>.
TEST(Loader, BatchRowsAreThePaddedSamples) {
  TestData d(24);
  Loader loader(*d.ds, options(6, 1));
  for (int s = 0; s < 4; ++s) {
    const Step step = loader.next_step();
    const MicroBatch& mb = step.micro[0];
    ASSERT_EQ(mb.samples.size(), 6u);
    const int64_t T = mb.batch.ids.size(1);
    const std::vector<int64_t> ids = mb.batch.ids.to_int_vector();
    const std::vector<int64_t> mask = mb.batch.label_mask.to_int_vector();
    std::vector<float> pixels;
    size_t longest = 0;
    for (size_t b = 0; b < 6; ++b) {
      const Sample x = *d.ds->load(static_cast<size_t>(mb.samples[b])).sample;
      longest = std::max(longest, x.ids.size());
      pixels.insert(pixels.end(), x.pixels.begin(), x.pixels.end());
      EXPECT_EQ(mb.batch.images_per_sample[b], x.num_images);
      for (int64_t t = 0; t < T; ++t) {
        const bool in = t < static_cast<int64_t>(x.ids.size());
        EXPECT_EQ(ids[b * T + t], in ? x.ids[t] : 0) << "row " << b << " t " << t;
        EXPECT_EQ(mask[b * T + t], in ? x.labels[t] : 0) << "row " << b << " t " << t;
      }
    }
    EXPECT_EQ(static_cast<size_t>(T), longest);
    if (mb.batch.pixels.defined()) {
      EXPECT_EQ(mb.batch.pixels.size(1), 3);
      EXPECT_EQ(mb.batch.pixels.size(2), 16);
    }
    EXPECT_EQ(mb.batch.pixels.defined() ? mb.batch.pixels.to_float_vector() : std::vector<float>{},
              pixels);
  }
}

// A slice whose samples are all bad becomes an empty micro-batch; the step still comes.
TEST(Loader, AllBadMicroBatchIsEmpty) {
  const std::vector<uint32_t> perm = epoch_permutation(4, 42, 0);
  TestData d(4, {static_cast<int>(perm[0]), static_cast<int>(perm[1])});
  Loader loader(*d.ds, options(2, 2));
  const Step step = loader.next_step();
  ASSERT_EQ(step.micro.size(), 2u);
  EXPECT_TRUE(step.micro[0].empty());
  EXPECT_EQ(step.micro[0].skipped, 2);
  EXPECT_FALSE(step.micro[0].batch.ids.defined());
  EXPECT_EQ(step.micro[0].supervised_tokens, 0);
  EXPECT_EQ(step.micro[1].batch.ids.size(0), 2);
  EXPECT_EQ(step.skipped(), 2);
  EXPECT_EQ(step.supervised_tokens(), step.micro[1].supervised_tokens);
  ASSERT_TRUE(step.epoch_end);
  EXPECT_EQ(step.epoch_end->line(), "epoch 0: 4 samples, 2 skipped (50.00%)");
}

TEST(Loader, AbortsPastMaxBadFractionAtEpochEnd) {
  TestData d(10, {4});
  LoaderOptions tolerant = options(5, 1);
  tolerant.max_bad_fraction = 0.1;
  Loader ok(*d.ds, tolerant);
  ok.next_step();
  EXPECT_EQ(ok.next_step().epoch_end->skipped, 1);

  LoaderOptions strict = options(5, 1);
  strict.max_bad_fraction = 0.05;
  Loader loader(*d.ds, strict);
  loader.next_step();  // 5 samples seen: below 100, no check before the epoch ends
  EXPECT_THAT([&] { loader.next_step(); },
              ThrowsMessage<Error>(AllOf(HasSubstr(d.path), HasSubstr("1 of 10 samples in epoch 0"),
                                         HasSubstr("max_bad_fraction 0.05"))));
}

// Once kBadFractionMinSamples (100) samples have been seen the fraction is checked after every
// step: a dataset whose first samples (in epoch order) are all bad stops after 100 of its 5000,
// with an error naming the counts, the fraction and the option.
TEST(Loader, AbortsPastMaxBadFractionMidEpoch) {
  const std::vector<uint32_t> perm = epoch_permutation(5000, 42, 0);
  std::set<int> bad;
  for (int k = 0; k < 150; ++k) bad.insert(static_cast<int>(perm[k]));
  TestData d(5000, bad);
  LoaderOptions opt = options(10, 2);
  opt.max_bad_fraction = 0.01;
  Loader loader(*d.ds, opt);
  for (int s = 0; s < 4; ++s) loader.next_step();  // 80 samples: below the minimum count
  EXPECT_THAT(
      [&] { loader.next_step(); },
      ThrowsMessage<Error>(AllOf(
          HasSubstr(d.path), HasSubstr("100 of 100 samples seen so far were bad"),
          HasSubstr("max_bad_fraction 0.01 (--max-bad-fraction)"), HasSubstr("100.00% bad"))));
  EXPECT_EQ(loader.state().seen_total, 100);
  EXPECT_EQ(loader.state().skipped_total, 100);
}

// The running check allows f·seen plus three standard deviations: two bad samples among the first
// 100 of a dataset within 1% overall do not stop it, and its epoch ends normally.
TEST(Loader, EarlyNoiseWithinTheFractionDoesNotAbort) {
  EXPECT_EQ(bad_samples_allowed_so_far(0.01, 99), std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(bad_samples_allowed_so_far(0.01, 100), 4.0);     // 1 + 3·1
  EXPECT_DOUBLE_EQ(bad_samples_allowed_so_far(0.04, 2500), 130.0);  // 100 + 3·10
  EXPECT_EQ(bad_samples_allowed_so_far(0.0, 100), 0.0);
  const std::vector<uint32_t> perm = epoch_permutation(1000, 42, 0);
  std::set<int> bad = {static_cast<int>(perm[3]), static_cast<int>(perm[50]),
                       static_cast<int>(perm[70]), static_cast<int>(perm[600])};
  TestData d(1000, bad);
  LoaderOptions opt = options(10, 1);
  opt.max_bad_fraction = 0.01;
  Loader loader(*d.ds, opt);
  Step last;
  for (int s = 0; s < 100; ++s) ASSERT_NO_THROW(last = loader.next_step()) << "step " << s;
  ASSERT_TRUE(last.epoch_end);
  EXPECT_EQ(last.epoch_end->skipped, 4);
}

// Prefetching with any number of workers gives what loading each slice in turn gives.
TEST(Loader, PrefetchOrderEqualsDirectLoading) {
  TestData d(45, {3, 17, 18, 30});
  std::vector<std::string> warnings_a, warnings_b;
  LoaderOptions a_opt = options(3, 2), b_opt = options(3, 2);
  a_opt.workers = 1;
  a_opt.prefetch_depth = 1;
  a_opt.warn = [&](const std::string& w) { warnings_a.push_back(w); };
  b_opt.workers = 3;
  b_opt.prefetch_depth = 5;
  b_opt.warn = [&](const std::string& w) { warnings_b.push_back(w); };
  Loader a(*d.ds, a_opt), b(*d.ds, b_opt);
  ASSERT_EQ(a.steps_per_epoch(), 7);
  std::vector<std::string> warnings_direct;
  for (int s = 0; s < 16; ++s) {
    const Step sa = a.next_step(), sb = b.next_step();
    expect_same_step(sa, sb, "step " + std::to_string(s));
    for (int m = 0; m < 2; ++m) {
      std::vector<Sample> samples;
      std::vector<int64_t> kept;
      for (const int64_t i : a.slice(s / 7, s % 7, m)) {
        SampleResult r = d.ds->load(static_cast<size_t>(i));
        if (r.sample) {
          samples.push_back(std::move(*r.sample));
          kept.push_back(i);
        } else {
          warnings_direct.push_back(d.ds->skip_warning(static_cast<size_t>(i), r.skip_reason));
        }
      }
      MicroBatch direct = collate(samples, kept, 0, 16);
      direct.skipped = 6 / 2 - static_cast<int64_t>(kept.size());
      expect_same_batch(sa.micro[m], direct, "direct step " + std::to_string(s));
    }
  }
  EXPECT_EQ(warnings_a, warnings_direct);
  EXPECT_EQ(warnings_b, warnings_direct);
  // Steps 0–15 are epochs 0 and 1 (42 of their 45 samples) and 12 samples of epoch 2.
  size_t bad_seen = 0;
  for (const auto& [epoch, taken] : {std::pair{0, 42}, std::pair{1, 42}, std::pair{2, 12}}) {
    const std::vector<uint32_t> perm = epoch_permutation(45, 42, epoch);
    for (int k = 0; k < taken; ++k) bad_seen += std::set<uint32_t>{3, 17, 18, 30}.count(perm[k]);
  }
  EXPECT_GE(bad_seen, 8u);
  EXPECT_EQ(warnings_a.size(), bad_seen);
  EXPECT_EQ(a.state(), b.state());
}

// N steps straight == N/2 steps, save, a fresh loader seeks, N/2 steps.
TEST(Loader, SeekResumesAtTheNextStep) {
  TestData d(30, {2, 11, 25});
  Loader straight(*d.ds, options(2, 3));
  ASSERT_EQ(straight.steps_per_epoch(), 5);
  std::vector<Step> all;
  std::vector<LoaderState> states;
  for (int s = 0; s < 12; ++s) {
    all.push_back(straight.next_step());
    states.push_back(straight.state());
  }
  std::string saved;
  {
    Loader first(*d.ds, options(2, 3));
    for (int s = 0; s < 6; ++s) expect_same_step(first.next_step(), all[s], "first half");
    saved = first.state().to_json().dump();
  }
  const LoaderState resumed = LoaderState::from_json(nlohmann::json::parse(saved));
  EXPECT_EQ(resumed, states[5]);
  EXPECT_EQ(resumed.epoch, 1);
  EXPECT_EQ(resumed.step_in_epoch, 1);
  // Warnings come once per consumed skip, not for what the workers loaded ahead.
  int64_t warnings = 0, skipped = 0;
  LoaderOptions opt = options(2, 3);
  opt.workers = 2;
  opt.prefetch_depth = 8;
  opt.warn = [&](const std::string&) { ++warnings; };
  Loader second(*d.ds, opt);
  second.seek(resumed);
  for (int s = 6; s < 12; ++s) {
    expect_same_step(second.next_step(), all[s], "after resume, step " + std::to_string(s));
    EXPECT_EQ(second.state(), states[s]);
    skipped += all[s].skipped();
  }
  EXPECT_GT(skipped, 0);
  EXPECT_EQ(warnings, skipped);

  straight.seek(states[1]);  // backwards, on a loader that has run ahead
  expect_same_step(straight.next_step(), all[2], "after seeking back");
  EXPECT_EQ(straight.state(), states[2]);
}

TEST(LoaderState, JsonRoundTripAndErrors) {
  const LoaderState s{3, 7, 2, 9, 1234, 16};
  EXPECT_EQ(LoaderState::from_json(s.to_json()), s);
  nlohmann::json j = s.to_json();
  j.erase("seen_total");
  EXPECT_THAT([&] { LoaderState::from_json(j); }, ThrowsMessage<Error>(HasSubstr("'seen_total'")));
  j = s.to_json();
  j["epoch"] = "three";
  EXPECT_THAT([&] { LoaderState::from_json(j); }, ThrowsMessage<Error>(HasSubstr("'epoch'")));

  TestData d(20);
  Loader loader(*d.ds, options(2, 2));
  EXPECT_THAT([&] { loader.seek(s); }, ThrowsMessage<Error>(HasSubstr("global batch of 16")));
}

TEST(Loader, RejectsADatasetSmallerThanOneGlobalBatch) {
  TestData d(7);
  EXPECT_THAT([&] { Loader loader(*d.ds, options(2, 2, 2)); },
              ThrowsMessage<Error>(HasSubstr("fewer than one global batch of 8")));
}

// A failure of the loading threads (here the file shrinks under the index) reaches the consumer.
TEST(Loader, WorkerErrorReachesTheConsumer) {
  TestData d(12);
  Loader loader(*d.ds, options(2, 1));
  std::filesystem::resize_file(d.path, 0);
  EXPECT_THAT([&] { loader.next_step(); },
              ThrowsMessage<Error>(HasSubstr("shorter than when it was indexed")));
  EXPECT_THAT([&] { loader.next_step(); }, ThrowsMessage<Error>(HasSubstr(d.path)));
}

// The consumer stops early with the queue full and workers busy: destruction joins, no hang.
TEST(Loader, StopsCleanlyWhenTheConsumerStopsEarly) {
  TestData d(60);
  LoaderOptions opt = options(2, 1);
  opt.workers = 3;
  opt.prefetch_depth = 8;
  {
    Loader loader(*d.ds, opt);
    loader.next_step();
  }
  { Loader never_started(*d.ds, opt); }
}

TEST(OrderedPrefetcher, DeliversInOrderAndForwardsErrors) {
  OrderedPrefetcher<int64_t> p(
      [](int64_t k) {
        std::this_thread::sleep_for(std::chrono::microseconds((k * 7919) % 300));
        if (k == 40) MV_FAIL("item ", k, " failed");
        return k * k;
      },
      4, 3);
  for (int64_t k = 0; k < 40; ++k) ASSERT_EQ(p.next(), k * k);
  EXPECT_THAT([&] { p.next(); }, ThrowsMessage<Error>(HasSubstr("item 40 failed")));
  EXPECT_THAT([&] { p.next(); }, ThrowsMessage<Error>(HasSubstr("item 40 failed")));
}

}  // namespace
}  // namespace minivlm
