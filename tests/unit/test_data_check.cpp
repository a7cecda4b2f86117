// check_dataset (data/data_check.h): a damaged dataset's report names every bad line with its
// reason, grouped by kind; lengths, images per sample and over-long samples are counted; the
// report does not depend on the number of threads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/data_check.h"
#include "test_dataset_fixtures.h"

namespace minivlm {
namespace {

using testing::HasSubstr;
using namespace testing_data;

std::string words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "word ";
  return s;
}

// Lines: 1 good, 2 malformed JSON, 3 blank, 4 missing image, 5 good with an image, 6 over-long,
// 7 bad role, 8 missing image, 9 good with two images, 10 image outside the images directory.
struct Damaged {
  ScratchDir dir;
  std::string path = dir.file("damaged.jsonl");
  Damaged() {
    write_png(dir.image("a.png"), 16, 16, 1);
    write_file(path, record("Hi", "Hello") + "\n" +                                   // 1
                         R"({"conversations": [{"role": "user", "content": "Hi"})" +  // 2
                         "\n\n" +                                                     // 3
                         record("Hi", "Yo", R"("absent.png")") + "\n" +               // 4
                         record("Look", "Yo", R"("a.png")", "<image>") + "\n" +       // 5
                         record("Talk.", words(300)) + "\n" +                         // 6
                         R"({"conversations": [{"role": "user", "content": "Hi"}, )"
                         R"({"role": "bot", "content": "Yo"}]})" +
                         "\n" +                                                // 7
                         record("Hi", "Yo", R"("gone.png")") + "\n" +          // 8
                         record("Two", "Yo", R"("a.png, a.png")") + "\n" +     // 9
                         record("Hi", "Yo", R"("../damaged.jsonl")") + "\n");  // 10
  }
};

TEST(CheckData, NamesEveryBadLineAndItsReason) {
  Damaged d;
  const Dataset ds(d.path, d.dir.images(), minimind(), small_format(256));
  const DataCheckReport rep = check_dataset(ds);
  EXPECT_EQ(rep.samples, 9);
  EXPECT_EQ(rep.usable, 3);
  EXPECT_EQ(rep.bad_samples(), 6);
  EXPECT_NEAR(rep.bad_fraction(), 6.0 / 9.0, 1e-12);
  ASSERT_EQ(rep.bad.size(), 5u);
  EXPECT_EQ(rep.bad[0].kind, "missing image …");
  EXPECT_EQ(rep.bad[0].count, 2);
  ASSERT_EQ(rep.bad[0].first.size(), 2u);
  EXPECT_EQ(rep.bad[0].first[0].where, d.path + ":4");
  EXPECT_EQ(rep.bad[0].first[1].where, d.path + ":8");
  const std::string text = rep.text();
  const std::string p = d.path + ":";
  EXPECT_THAT(text, HasSubstr("  malformed JSON: 1\n    " + p + "2: malformed JSON: "));
  EXPECT_THAT(text, HasSubstr("  missing image …: 2\n    " + p + "4: missing image " +
                              d.dir.image("absent.png") + "\n    " + p + "8: missing image " +
                              d.dir.image("gone.png") + "\n"));
  EXPECT_THAT(text, HasSubstr("  over-long: 1\n    " + p + "6: over-long: "));
  EXPECT_THAT(text, HasSubstr(" tokens exceed max_seq_len 256"));
  EXPECT_THAT(text, HasSubstr("  unknown role … in …: 1\n    " + p +
                              "7: unknown role 'bot' in conversations[1]"));
  EXPECT_THAT(text, HasSubstr("  image path … is outside the images directory …: 1\n    " + p +
                              "10: image path '../damaged.jsonl' is outside"));
  EXPECT_THAT(text, HasSubstr("samples: 9\nusable samples: 3 (33.33%)\nbad samples: 6 (66.67%)\n"));
  EXPECT_THAT(text, HasSubstr("images per usable sample: 0: 1, 1: 1, 2: 1\n"));
  EXPECT_THAT(text, HasSubstr("over max_seq_len 256: 1\n    " + p + "6: "));
  // Four rendered samples: the three usable ones and the over-long one.
  ASSERT_EQ(rep.lengths.size(), 4u);
  EXPECT_GT(rep.lengths.back(), 256);
  EXPECT_EQ(rep.over_long, 1);
  EXPECT_EQ(rep.over_long_first.at(0).where, d.path + ":6");
}

TEST(CheckData, SameReportWithAnyThreadCountAndProgress) {
  Damaged d;
  const Dataset ds(d.path, d.dir.images(), minimind(), small_format(256));
  const std::string one = check_dataset(ds).text();
  DataCheckOptions opt;
  opt.workers = 4;
  EXPECT_EQ(check_dataset(ds, opt).text(), one);
  opt.workers = 3;
  opt.progress = [](size_t done, size_t total) { EXPECT_LE(done, total); };
  EXPECT_EQ(check_dataset(ds, opt).text(), one);
}

TEST(CheckData, LocationsPerReasonAreCapped) {
  ScratchDir dir;
  std::string lines;
  for (int i = 0; i < 12; ++i) lines += "{oops\n";
  lines += record("Hi", "Yo") + "\n";
  write_file(dir.file("d.jsonl"), lines);
  const Dataset ds(dir.file("d.jsonl"), "", minimind(), small_format());
  DataCheckOptions opt;
  opt.max_locations = 3;
  const DataCheckReport rep = check_dataset(ds, opt);
  ASSERT_EQ(rep.bad.size(), 1u);
  EXPECT_EQ(rep.bad[0].count, 12);
  EXPECT_EQ(rep.bad[0].first.size(), 3u);
  EXPECT_THAT(rep.text(), HasSubstr(dir.file("d.jsonl") + ":3: malformed JSON"));
  EXPECT_THAT(rep.text(), HasSubstr("    ... and 9 more\n"));
}

// Truncation on: an over-long sample is usable and cut, and still counted as over max_seq_len.
TEST(CheckData, TruncatedSamplesAreUsableAndCounted) {
  ScratchDir dir;
  write_file(dir.file("d.jsonl"), record("Talk.", words(40)) + "\n" + record("Hi", "Yo") + "\n");
  SampleFormat fmt = small_format(20);
  fmt.truncate_over_long = true;
  const DataCheckReport rep = check_dataset(Dataset(dir.file("d.jsonl"), "", minimind(), fmt));
  EXPECT_EQ(rep.usable, 2);
  EXPECT_EQ(rep.truncated, 1);
  EXPECT_EQ(rep.over_long, 1);
  EXPECT_THAT(rep.text(), HasSubstr("usable samples: 2 (100.00%), 1 of them cut at max_seq_len"));
  EXPECT_THAT(rep.text(), HasSubstr(":1: " + std::to_string(rep.lengths.back()) + " tokens, cut"));
}

// Nearest-rank percentiles: the smallest length with at least p% of the lengths at or below it.
TEST(CheckData, LengthPercentiles) {
  DataCheckReport rep;
  EXPECT_EQ(rep.length_percentile(50), 0);
  for (int64_t k = 1; k <= 200; ++k) rep.lengths.push_back(k * 10);
  EXPECT_EQ(rep.length_percentile(50), 1000);
  EXPECT_EQ(rep.length_percentile(90), 1800);
  EXPECT_EQ(rep.length_percentile(99), 1980);
  EXPECT_EQ(rep.length_percentile(100), 2000);
  rep.lengths = {7};
  EXPECT_EQ(rep.length_percentile(1), 7);
}

TEST(CheckData, ReasonKinds) {
  EXPECT_EQ(skip_reason_kind("malformed JSON: parse error at line 1, column 7"), "malformed JSON");
  EXPECT_EQ(skip_reason_kind("missing image /data/images/a.png"), "missing image …");
  EXPECT_EQ(skip_reason_kind("corrupt or unreadable image /d/x.png (not a PNG)"),
            "corrupt or unreadable image …");
  EXPECT_EQ(skip_reason_kind("chat: the user messages hold 2 <image> placeholders but the "
                             "sample has 1 images"),
            "the user messages hold … <image> placeholders but the sample has … images");
  EXPECT_EQ(skip_reason_kind("'image' must be a string or a list of strings"),
            "… must be a string or a list of strings");
  EXPECT_EQ(skip_reason_kind("no supervised token (no assistant reply)"), "no supervised token");
  EXPECT_EQ(skip_reason_kind("over-long: 300 tokens exceed max_seq_len 256"), "over-long");
}

}  // namespace
}  // namespace minivlm
