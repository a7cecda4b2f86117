// Parquet datasets in MiniMind-V's layout (data/parquet_source.h) against their JSONL twins: the
// fixtures in tests/fixtures/parquet/ were written by pyarrow (scripts/reference/
// make_parquet_fixtures.py) in several codecs, row-group sizes, page versions and image-column
// forms, each with the same records as a JSONL file plus image files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <thread>

#include "core/error.h"
#include "data/dataset.h"
#include "data/parquet_source.h"
#include "test_dataset_fixtures.h"

namespace minivlm {
namespace {

using testing::AllOf;
using testing::HasSubstr;
using testing::ThrowsMessage;
using namespace testing_data;

const std::string kDir = MINIVLM_SOURCE_DIR "/tests/fixtures/parquet/";

#define SKIP_WITHOUT_PARQUET() \
  if (!parquet_supported()) GTEST_SKIP() << "built without parquet (no pyarrow)"

void expect_same(const SampleResult& got, const SampleResult& want, size_t i) {
  ASSERT_EQ(got.sample.has_value(), want.sample.has_value())
      << "record " << i << ": " << got.skip_reason << " | " << want.skip_reason;
  if (!want.sample) return;
  const Sample &a = *got.sample, &b = *want.sample;
  EXPECT_EQ(a.ids, b.ids) << "record " << i;
  EXPECT_EQ(a.labels, b.labels) << "record " << i;
  EXPECT_EQ(a.num_images, b.num_images) << "record " << i;
  EXPECT_EQ(a.tiles_per_image, b.tiles_per_image) << "record " << i;
  EXPECT_EQ(a.truncated, b.truncated) << "record " << i;
  EXPECT_TRUE(a.pixels == b.pixels) << "record " << i;  // bit-identical
}

struct Twin {
  std::string parquet, jsonl;
};
void PrintTo(const Twin& t, std::ostream* os) { *os << t.parquet << " / " << t.jsonl; }

class ParquetTwin : public testing::TestWithParam<Twin> {};

TEST_P(ParquetTwin, EverySampleEqualsItsJsonlTwin) {
  SKIP_WITHOUT_PARQUET();
  const Twin& t = GetParam();
  const SampleFormat fmt = small_format();
  const Dataset jsonl(kDir + t.jsonl, kDir + "images", minimind(), fmt);
  const Dataset parquet(kDir + t.parquet, "", minimind(), fmt);
  ASSERT_EQ(parquet.size(), jsonl.size());
  ASSERT_EQ(parquet.size(), 24u);
  int with_images = 0, multi = 0;
  for (size_t i = 0; i < parquet.size(); ++i) {
    const SampleResult want = jsonl.load(i);
    ASSERT_TRUE(want.sample) << want.skip_reason;
    expect_same(parquet.load(i), want, i);
    with_images += want.sample->num_images > 0;
    multi += want.sample->num_images > 1;
    EXPECT_EQ(parquet.location(i), kDir + t.parquet + ":row " + std::to_string(i));

    // Generation prompts too.
    const PromptResult pa = parquet.load_prompt(i), pb = jsonl.load_prompt(i);
    ASSERT_TRUE(pa.record && pb.record) << pa.skip_reason << pb.skip_reason;
    EXPECT_EQ(pa.record->reference, pb.record->reference);
    EXPECT_EQ(pa.record->context.size(), pb.record->context.size());
    EXPECT_TRUE(pa.record->images.pixels == pb.record->images.pixels);
  }
  EXPECT_GT(with_images, 10);
  EXPECT_LT(with_images, 24);
  if (t.jsonl == "list.jsonl") {
    EXPECT_GT(multi, 3);
  }
}

INSTANTIATE_TEST_SUITE_P(Files, ParquetTwin,
                         testing::Values(Twin{"single_snappy_1rg.parquet", "single.jsonl"},
                                         Twin{"single_zstd_rg7.parquet", "single.jsonl"},
                                         Twin{"single_none_v2.parquet", "single.jsonl"},
                                         Twin{"list_snappy_1rg.parquet", "list.jsonl"},
                                         Twin{"list_zstd_rg5_v2.parquet", "list.jsonl"},
                                         Twin{"list_none_nodict.parquet", "list.jsonl"}),
                         [](const testing::TestParamInfo<Twin>& info) {
                           std::string name =
                               info.param.parquet.substr(0, info.param.parquet.find('.'));
                           return name;
                         });

// MiniMind-V's text-only rows carry an 8x8 placeholder image their text never names: with
// ignore_unreferenced_images they are the text-only samples of their JSONL twin; without it the
// image is put before the first user message (SPEC §3).
TEST(Parquet, PlaceholderImagesOfTextRowsAreIgnoredWhenAsked) {
  SKIP_WITHOUT_PARQUET();
  SampleFormat ignoring = small_format();
  ignoring.ignore_unreferenced_images = true;
  const Dataset jsonl(kDir + "placeholder.jsonl", "", minimind(), small_format());
  const Dataset ignored(kDir + "placeholder.parquet", "", minimind(), ignoring);
  const Dataset kept(kDir + "placeholder.parquet", "", minimind(), small_format());
  ASSERT_EQ(ignored.size(), 2u);
  for (size_t i = 0; i < ignored.size(); ++i) {
    const SampleResult want = jsonl.load(i);
    ASSERT_TRUE(want.sample) << want.skip_reason;
    EXPECT_EQ(want.sample->num_images, 0);
    expect_same(ignored.load(i), want, i);
    const SampleResult with_image = kept.load(i);
    ASSERT_TRUE(with_image.sample) << with_image.skip_reason;
    EXPECT_EQ(with_image.sample->num_images, 1);
    EXPECT_GT(with_image.sample->ids.size(), want.sample->ids.size());
  }
}

TEST(Parquet, ShuffledConcurrentAccessEqualsSequential) {
  SKIP_WITHOUT_PARQUET();
  for (const char* file : {"list_none_nodict.parquet", "single_zstd_rg7.parquet"}) {
    const Dataset ds(kDir + file, "", minimind(), small_format());
    std::vector<SampleResult> seq;
    for (size_t i = 0; i < ds.size(); ++i) seq.push_back(ds.load(i));
    // Every index three times, shuffled, over four threads.
    std::vector<size_t> order;
    for (int rep = 0; rep < 3; ++rep)
      for (size_t i = 0; i < ds.size(); ++i) order.push_back(ds.size() - 1 - i);
    std::shuffle(order.begin(), order.end(), std::mt19937(5));
    std::vector<SampleResult> got(order.size());
    std::vector<std::thread> threads;
    for (size_t t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (size_t k = t; k < order.size(); k += 4) got[k] = ds.load(order[k]);
      });
    for (auto& th : threads) th.join();
    for (size_t k = 0; k < order.size(); ++k) expect_same(got[k], seq[order[k]], order[k]);
  }
}

TEST(Parquet, BadRowsAreSkippedWithAWarningNamingTheRow) {
  SKIP_WITHOUT_PARQUET();
  const std::string path = kDir + "bad.parquet";
  const Dataset ds(path, "", minimind(), small_format());
  ASSERT_EQ(ds.size(), 14u);
  const std::vector<std::string> reasons = {
      "malformed 'conversations' JSON",
      "'conversations' must be a non-empty list",
      "unknown role 'robot'",
      "'conversations' is null",
      "corrupt or unreadable image image_bytes[0]",
      "image",  // two placeholders, one image: encode_chat's count mismatch
      "unreadable 'image_bytes' value (image 2 of the list is null)",
  };
  for (size_t i = 0; i < ds.size(); ++i) {
    const SampleResult r = ds.load(i);
    if (i % 2 == 0) {
      EXPECT_TRUE(r.sample) << "row " << i << ": " << r.skip_reason;
      continue;
    }
    ASSERT_FALSE(r.sample) << "row " << i;
    EXPECT_THAT(r.skip_reason, HasSubstr(reasons[i / 2])) << "row " << i;
    EXPECT_THAT(ds.skip_warning(i, r.skip_reason),
                HasSubstr("warning: " + path + ":row " + std::to_string(i) + ": skipped sample: "));
  }
}

TEST(Parquet, FilesThatAreNotDatasetsAreNamedErrors) {
  SKIP_WITHOUT_PARQUET();
  ScratchDir dir;
  const auto open = [&](const std::string& path) {
    return [path] { Dataset ds(path, "", minimind(), small_format()); };
  };
  const std::string missing = dir.file("missing.parquet");
  EXPECT_THAT(open(missing),
              ThrowsMessage<Error>(AllOf(HasSubstr(missing), HasSubstr("cannot open"))));

  const std::string text = dir.file("text.parquet");
  write_file(text, "{\"conversations\": []}\n");
  EXPECT_THAT(open(text),
              ThrowsMessage<Error>(AllOf(HasSubstr(text), HasSubstr("not a readable parquet"))));

  // Cut in half: the footer is gone.
  const std::string cut = dir.file("cut.parquet");
  std::filesystem::copy_file(kDir + "list_snappy_1rg.parquet", cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) / 2);
  EXPECT_THAT(open(cut), ThrowsMessage<Error>(HasSubstr(cut)));

  EXPECT_THAT(open(kDir + "no_conversations.parquet"),
              ThrowsMessage<Error>(AllOf(HasSubstr(kDir + "no_conversations.parquet"),
                                         HasSubstr("no 'conversations' column"))));
  EXPECT_THAT(open(kDir + "wrong_type.parquet"),
              ThrowsMessage<Error>(AllOf(HasSubstr(kDir + "wrong_type.parquet"),
                                         HasSubstr("'conversations' must be binary or string"),
                                         HasSubstr("INT64"))));
}

TEST(Parquet, CorruptColumnChunkBytesAreNamedAtOpenOrSkippedPerRow) {
  SKIP_WITHOUT_PARQUET();
  // Overwrite the middle of an uncompressed file (page headers and image bytes): opening either
  // fails naming the file, or the rows whose pages no longer decode are skipped; never a crash.
  ScratchDir dir;
  const std::string path = dir.file("garbled.parquet");
  std::filesystem::copy_file(kDir + "list_none_nodict.parquet", path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(std::filesystem::file_size(path));
    std::mt19937 rng(3);
    for (std::streamoff at = size / 4; at < size / 2; at += 97) {
      f.seekp(at);
      f.put(static_cast<char>(rng()));
    }
  }
  try {
    const Dataset ds(path, "", minimind(), small_format());
    for (size_t i = 0; i < ds.size(); ++i) {
      const SampleResult r = ds.load(i);
      if (!r.sample) {
        EXPECT_FALSE(r.skip_reason.empty());
      }
    }
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
  }
}

// A page whose header promises 600 MiB (20 KB of zstd) is refused, naming the limit, before its
// buffer is taken: at open or as its row's error, never inflated.
TEST(Parquet, APageOverTheBufferLimitIsRefusedNotInflated) {
  SKIP_WITHOUT_PARQUET();
  std::string message;
  try {
    const std::unique_ptr<RecordSource> source = open_parquet_source(kDir + "bomb.parquet");
    for (size_t i = 0; i < source->size(); ++i) message += source->record(i).error;
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_THAT(message, HasSubstr("over the limit")) << message;
}

TEST(Parquet, ExtensionChoosesTheSource) {
  EXPECT_TRUE(is_parquet_path("a/b/pretrain_i2t.parquet"));
  EXPECT_TRUE(is_parquet_path("X.PARQUET"));
  EXPECT_FALSE(is_parquet_path("a.parquet.jsonl"));
  EXPECT_FALSE(is_parquet_path("parquet"));
  if (parquet_supported()) return;
  EXPECT_THAT([] { Dataset ds(kDir + "list_snappy_1rg.parquet", "", minimind(), small_format()); },
              ThrowsMessage<Error>(AllOf(HasSubstr("built without parquet support"),
                                         HasSubstr("scripts/setup.sh"))));
}

}  // namespace
}  // namespace minivlm
