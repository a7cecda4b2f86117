// JSONL dataset: the line index, record parsing, images, over-long samples and every bad-input case
// of SPEC §4.3 (each one skipped with one warning naming file, line and reason).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/dataset.h"
#include "data/jsonl_index.h"
#include "data/loader.h"
#include "nn/config.h"
#include "test_dataset_fixtures.h"

namespace minivlm {
namespace {

using testing::AllOf;
using testing::HasSubstr;
using testing::ThrowsMessage;
using namespace testing_data;

TEST(JsonlIndex, SkipsBlankLinesAndStripsLineEndings) {
  ScratchDir dir;
  const std::string path = dir.file("index.jsonl");
  write_file(path, "first\n\n  \t \r\n{\"b\": 1}\r\n\r\n  indented  \nlast without newline");
  const JsonlIndex index(path);
  ASSERT_EQ(index.size(), 4u);
  EXPECT_EQ(index.read(0), "first");
  EXPECT_EQ(index.line_number(0), 1);
  EXPECT_EQ(index.read(1), "{\"b\": 1}");
  EXPECT_EQ(index.line_number(1), 4);
  EXPECT_EQ(index.read(2), "  indented");
  EXPECT_EQ(index.line_number(2), 6);
  EXPECT_EQ(index.read(3), "last without newline");
  EXPECT_EQ(index.line_number(3), 7);
}

// A line beyond the limit costs its own record, not the dataset: reading it gives the reason.
TEST(JsonlIndex, ALineBeyondTheLimitIsAnUnreadableRecordNotAnError) {
  ScratchDir dir;
  {
    std::ofstream f(dir.file("long.jsonl"), std::ios::binary);
    f << "{\"a\": 1}\n{\"s\": \"";
    const std::string block(1 << 20, 'x');
    for (uint64_t k = 0; k <= (kMaxJsonlLineBytes >> 20); ++k) f << block;
    f << "\"}\n{\"b\": 2}\n";
  }
  const JsonlIndex index(dir.file("long.jsonl"));
  ASSERT_EQ(index.size(), 3u);
  EXPECT_EQ(index.record(0).text, "{\"a\": 1}");
  const Record big = index.record(1);
  EXPECT_TRUE(big.text.empty());
  EXPECT_NE(big.error.find("longer than the limit of 67108864 bytes"), std::string::npos)
      << big.error;
  EXPECT_EQ(index.location(1), dir.file("long.jsonl") + ":2");
  EXPECT_EQ(index.record(2).text, "{\"b\": 2}");
  EXPECT_THROW(index.read(1), Error);
}

TEST(JsonlIndex, LinesLongerThanTheReadChunk) {
  ScratchDir dir;
  const std::string path = dir.file("long.jsonl");
  const std::string a(3'000'000, 'a'), b(5, 'b');
  write_file(path, a + "\r\n" + b + "\n");
  const JsonlIndex index(path);
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index.read(0), a);
  EXPECT_EQ(index.read(1), b);
  EXPECT_EQ(index.line_number(1), 2);
}

TEST(JsonlIndex, EmptyFileAndMissingFile) {
  ScratchDir dir;
  write_file(dir.file("empty.jsonl"), "\n\r\n");
  EXPECT_EQ(JsonlIndex(dir.file("empty.jsonl")).size(), 0u);
  const std::string missing = dir.file("missing.jsonl");
  EXPECT_THAT([&] { JsonlIndex index(missing); }, ThrowsMessage<Error>(HasSubstr(missing)));
}

TEST(JsonlIndex, FileShrunkAfterIndexingIsAnError) {
  ScratchDir dir;
  const std::string path = dir.file("shrink.jsonl");
  write_file(path, "one\ntwo\n");
  const JsonlIndex index(path);
  std::filesystem::resize_file(path, 2);
  EXPECT_THAT([&] { index.read(1); },
              ThrowsMessage<Error>(HasSubstr(path + ":2: the file is shorter")));
}

TEST(Dataset, DatasetLevelErrorsNameThePath) {
  ScratchDir dir;
  write_file(dir.file("d.jsonl"), record("Hi", "Hello") + "\n");
  const std::string no_dir = dir.file("no_such_images");
  EXPECT_THAT([&] { Dataset ds(dir.file("d.jsonl"), no_dir, minimind(), small_format()); },
              ThrowsMessage<Error>(HasSubstr(no_dir)));
  const std::string no_file = dir.file("nope.jsonl");
  EXPECT_THAT([&] { Dataset ds(no_file, dir.images(), minimind(), small_format()); },
              ThrowsMessage<Error>(HasSubstr(no_file)));
}

// The format's image processor is the model's (the processor itself: test_processor.cpp).
TEST(SampleFormat, TakesTheModelsImageSettings) {
  ModelConfig c;
  c.vision.image_size = 32;
  c.vision.patch_size = 8;
  c.projector.pixel_shuffle = 2;
  c.image_token = "<|im_end|>";
  const SampleFormat f = SampleFormat::for_model(c, 300);
  EXPECT_EQ(f.max_seq_len, 300);
  ASSERT_TRUE(f.images);
  EXPECT_EQ(f.images->tile_size(), 32);
  EXPECT_EQ(f.images->image_token(), "<|im_end|>");
  const RgbImage img{8, 8, std::vector<uint8_t>(8 * 8 * 3, 100)};
  EXPECT_EQ(f.images->process(img).prompt.image_tokens, 4);  // (32 / 8 / 2)²
  EXPECT_EQ(SampleFormat::for_model(ModelConfig{}, 512).images->process(img).prompt.image_tokens,
            49);
}

// A reason quoting a huge value is shortened to its head and tail in the one warning line.
TEST(Dataset, LongValuesAreShortenedInSkipReasons) {
  ScratchDir dir;
  const std::string role(100000, 'r');
  write_file(dir.file("d.jsonl"),
             R"({"conversations": [{"role": ")" + role +
                 R"(", "content": "hi"}, {"role": "assistant", "content": "x"}]})"
                 "\n");
  const Dataset ds(dir.file("d.jsonl"), "", minimind(), small_format());
  const SampleResult r = ds.load(0);
  ASSERT_FALSE(r.sample);
  EXPECT_LT(r.skip_reason.size(), 400u) << r.skip_reason.size();
  EXPECT_THAT(r.skip_reason, testing::StartsWith("unknown role 'rrrr"));
  EXPECT_THAT(r.skip_reason, HasSubstr(" bytes omitted] "));
  EXPECT_THAT(r.skip_reason, testing::EndsWith("(valid roles: system, user, assistant)"));
  EXPECT_LT(ds.skip_warning(0, r.skip_reason).size(), 500u);
}

TEST(Dataset, TextSampleIdsAndLabels) {
  ScratchDir dir;
  write_file(dir.file("d.jsonl"),
             R"({"conversations": [{"role": "system", "content": "Be brief."},)"
             R"( {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],)"
             R"( "id": 7})"
             "\n");
  const Dataset ds(dir.file("d.jsonl"), "", minimind(), small_format());
  EXPECT_EQ(ds.pad_id(), 0);  // <|endoftext|> in the MiniMind tokenizer
  const SampleResult r = ds.load(0);
  ASSERT_TRUE(r.sample) << r.skip_reason;
  const Sample& s = *r.sample;
  EXPECT_EQ(minimind().decode(s.ids),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n");
  std::vector<int32_t> supervised;
  for (size_t t = 0; t < s.ids.size(); ++t)
    if (s.labels[t]) supervised.push_back(s.ids[t]);
  EXPECT_EQ(minimind().decode(supervised), "Hello!<|im_end|>\n");
  EXPECT_EQ(s.supervised_tokens(), static_cast<int64_t>(supervised.size()));
  EXPECT_EQ(s.num_images, 0);
  EXPECT_TRUE(s.pixels.empty());
  EXPECT_FALSE(s.truncated);
}

// Every form of the `image` field gives the same images in the same order, preprocessed exactly
// as clip_preprocess does on its own, one tile each.
TEST(Dataset, ImageFieldForms) {
  ScratchDir dir;
  write_png(dir.image("a.png"), 20, 16, 1);
  write_png(dir.image("b.png"), 16, 24, 2);
  write_file(dir.file("d.jsonl"), record("Compare.", "Same.", R"("a.png, b.png")") + "\n" +
                                      record("Compare.", "Same.", R"(["a.png", " b.png "])") +
                                      "\n" + record("Compare.", "Same.", R"("a.png,b.png")") +
                                      "\n" + record("One.", "Yes.", R"("b.png")") + "\n");
  const SampleFormat fmt = small_format();
  const Dataset ds(dir.file("d.jsonl"), dir.images(), minimind(), fmt);
  std::vector<float> expected = clip_preprocess(load_rgb_image(dir.image("a.png")), 16);
  const std::vector<float> b = clip_preprocess(load_rgb_image(dir.image("b.png")), 16);
  expected.insert(expected.end(), b.begin(), b.end());
  for (size_t i = 0; i < 3; ++i) {
    const SampleResult r = ds.load(i);
    ASSERT_TRUE(r.sample) << r.skip_reason;
    EXPECT_EQ(r.sample->num_images, 2);
    EXPECT_EQ(r.sample->tiles_per_image, (std::vector<int64_t>{1, 1}));
    EXPECT_EQ(r.sample->pixels, expected) << "record " << i;
    // No <image> in the text: one "<image>\n" per image goes before the question.
    EXPECT_THAT(minimind().decode(r.sample->ids),
                HasSubstr("user\n<|image_pad|><|image_pad|><|image_pad|><|image_pad|>\n"
                          "<|image_pad|><|image_pad|><|image_pad|><|image_pad|>\nCompare."));
  }
  const SampleResult one = ds.load(3);
  ASSERT_TRUE(one.sample) << one.skip_reason;
  EXPECT_EQ(one.sample->pixels, b);
  EXPECT_EQ(std::count(one.sample->ids.begin(), one.sample->ids.end(), 12), 4);
}

// "video" as "image": each <video> becomes the video's prompt (its sampled frames, one tile each,
// data/video.h), images and videos in the order of their placeholders; a corrupt video skips the
// sample naming the file.
TEST(Dataset, VideoField) {
  ScratchDir dir;
  write_png(dir.image("a.png"), 20, 16, 1);
  std::filesystem::copy_file(MINIVLM_SOURCE_DIR "/tests/fixtures/video/tiny.mp4",
                             dir.image("v.mp4"));
  write_file(dir.image("bad.mp4"), std::string(2048, 'x'));
  write_file(dir.file("d.jsonl"),
             R"({"conversations": [{"role": "user", "content": "<video>then<image>"},)"
             R"( {"role": "assistant", "content": "Ok."}], "image": "a.png", "video": "v.mp4"})"
             "\n"
             R"({"conversations": [{"role": "user", "content": "What?"},)"
             R"( {"role": "assistant", "content": "Ok."}], "video": ["bad.mp4"]})"
             "\n");
  const SampleFormat fmt = small_format();
  const Dataset ds(dir.file("d.jsonl"), dir.images(), minimind(), fmt);
  const SampleResult r = ds.load(0);
  ASSERT_TRUE(r.sample) << r.skip_reason;
  // 6 s at 1 frame/s: 6 frames of one tile, then the image.
  EXPECT_EQ(r.sample->num_images, 2);
  EXPECT_EQ(r.sample->tiles_per_image, (std::vector<int64_t>{6, 1}));
  EXPECT_EQ(r.sample->pixels.size(), 7u * 3 * 16 * 16);
  EXPECT_EQ(std::count(r.sample->ids.begin(), r.sample->ids.end(), 12), 7 * 4);
  EXPECT_THAT(minimind().decode(r.sample->ids),
              AllOf(HasSubstr("user\nYou are provided the following series of six frames from a "
                              "0:00:06 [H:MM:SS] video.\n\nFrame from 00:00:<|image_pad|>"),
                    HasSubstr("\nFrame from 00:05:<|image_pad|><|image_pad|><|image_pad|>"
                              "<|image_pad|>\n\nthen<|image_pad|>")));
  const SampleResult bad = ds.load(1);
  ASSERT_FALSE(bad.sample);
  EXPECT_THAT(bad.skip_reason, AllOf(HasSubstr("corrupt or unusable video " + dir.image("bad.mp4")),
                                     HasSubstr("not a video")));
}

// A long sample is skipped by default (test_data_options.cpp); truncate_over_long cuts it.
TEST(Dataset, LongTextIsTruncatedAtMaxSeqLenWhenAsked) {
  ScratchDir dir;
  std::string answer;
  for (int i = 0; i < 40; ++i) answer += "word ";
  write_file(dir.file("d.jsonl"), record("Talk.", answer) + "\n");
  SampleFormat truncating = small_format(20);
  truncating.truncate_over_long = true;
  const Dataset full(dir.file("d.jsonl"), "", minimind(), small_format(1000));
  const Dataset cut(dir.file("d.jsonl"), "", minimind(), truncating);
  const SampleResult f = full.load(0), c = cut.load(0);
  ASSERT_TRUE(f.sample && c.sample) << c.skip_reason;
  ASSERT_GT(f.sample->ids.size(), 20u);
  EXPECT_FALSE(f.sample->truncated);
  EXPECT_TRUE(c.sample->truncated);
  EXPECT_EQ(c.sample->ids, std::vector<int32_t>(f.sample->ids.begin(), f.sample->ids.begin() + 20));
  EXPECT_EQ(c.sample->labels,
            std::vector<uint8_t>(f.sample->labels.begin(), f.sample->labels.begin() + 20));
}

// An image sample whose text runs past max_seq_len after its image run is truncated too.
TEST(Dataset, ImageSampleTruncatedAfterItsImageRun) {
  ScratchDir dir;
  write_png(dir.image("a.png"), 16, 16, 3);
  std::string answer;
  for (int i = 0; i < 40; ++i) answer += "word ";
  write_file(dir.file("d.jsonl"), record("Describe.", answer, R"("a.png")") + "\n");
  SampleFormat truncating = small_format(24);
  truncating.truncate_over_long = true;
  const Dataset ds(dir.file("d.jsonl"), dir.images(), minimind(), truncating);
  const SampleResult r = ds.load(0);
  ASSERT_TRUE(r.sample) << r.skip_reason;
  EXPECT_TRUE(r.sample->truncated);
  EXPECT_EQ(r.sample->ids.size(), 24u);
  EXPECT_EQ(std::count(r.sample->ids.begin(), r.sample->ids.end(), 12), 4);
}

struct BadCase {
  const char* name;
  std::string line;
  std::string reason;  // a part of the expected skip reason
  int64_t max_seq_len = 256;
  bool truncate = false;  // SampleFormat::truncate_over_long
};

std::vector<BadCase> bad_cases() {
  std::string long_question;
  for (int i = 0; i < 30; ++i) long_question += "word ";
  const EncodedChat e =
      encode_chat(minimind(), {{"user", long_question + "<image>"}, {"assistant", "Yo"}},
                  {image_run("<|image_pad|>", 4)}, "<|image_pad|>");
  const int64_t first_image_token = std::find(e.ids.begin(), e.ids.end(), 12) - e.ids.begin();
  return {
      {"MalformedJson", R"({"conversations": [{"role": "user", "content": "Hi"})",
       "malformed JSON: "},
      {"NotAnObject", R"([{"role": "user", "content": "Hi"}])", "expected a JSON object"},
      {"MissingConversations", R"({"image": "a.png"})", "missing field 'conversations'"},
      {"EmptyConversations", R"({"conversations": []})", "'conversations' must be a non-empty"},
      {"MissingContent", R"({"conversations": [{"role": "user"}]})",
       "missing field 'content' in conversations[0]"},
      {"ContentNotString",
       R"({"conversations": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": 5}]})",
       "'content' in conversations[1] is not a string"},
      {"UnknownRole",
       R"({"conversations": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Yo"}]})",
       "unknown role 'bot' in conversations[1]"},
      {"BadImageField", record("Hi", "Yo", "5"), "'image' must be a string or a list"},
      {"EmptyImagePath", record("Hi", "Yo", R"("a.png, ")"), "empty path in 'image'"},
      {"MissingImage", record("Hi", "Yo", R"("absent.png")"), "missing image "},
      {"CorruptImage", record("Hi", "Yo", R"("corrupt.png")"), "corrupt or unreadable image "},
      {"TruncatedPng", record("Hi", "Yo", R"("cut.png")"), "corrupt or unreadable image "},
      {"PlaceholderMismatch", record("Hi", "Yo", R"("a.png")", "<image><image>"),
       "2 <image> placeholders but the sample has 1 images"},
      {"PlaceholderWithoutImage", record("Hi", "Yo", "", "<image>"),
       "1 <image> placeholders but the sample has 0 images"},
      {"OverLong", record(long_question, "Yo"),
       " tokens exceed max_seq_len 20 (--over-long truncate cuts such samples instead)", 20},
      {"OverLongThroughImageRun", record(long_question + "<image>", "Yo", R"("a.png")"),
       "cut would go through an image run", first_image_token + 2, true},
      {"ImageRunPastTheCut", record(long_question + "<image>", "Yo", R"("a.png")"),
       "cut would go through an image run", first_image_token, true},
      {"OverLongImageSample", record(long_question + "<image>", "Yo", R"("a.png")"),
       "tokens exceed max_seq_len " + std::to_string(first_image_token + 2), first_image_token + 2},
      {"NoSupervisedToken", R"({"conversations": [{"role": "user", "content": "Hi"}]})",
       "no supervised token"},
      {"NoSupervisedTokenWithinMaxSeqLen", record(long_question, "Yo"),
       "no supervised token within max_seq_len 20", 20, true},
      {"ImagePathGoesUp", record("Hi", "Yo", R"("../a.png")"),
       "image path '../a.png' is outside the images directory"},
      {"ImagePathAbsolute", record("Hi", "Yo", R"("/etc/passwd")"),
       "image path '/etc/passwd' is outside the images directory"},
  };
}

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class BadInput : public testing::TestWithParam<BadCase> {};

// The bad record sits on line 3 between two good ones (line 2 is blank). Loading it gives the
// reason; a loader over the file skips it with exactly one warning and counts it.
TEST_P(BadInput, SkippedWithOneWarningNamingFileAndLine) {
  const BadCase& c = GetParam();
  ScratchDir dir;
  write_png(dir.image("a.png"), 16, 16, 4);
  write_file(dir.image("corrupt.png"), "this is not an image at all");
  {
    write_png(dir.image("whole.png"), 16, 16, 5);
    std::ifstream in(dir.image("whole.png"), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    write_file(dir.image("cut.png"), bytes.substr(0, bytes.size() / 2));
  }
  const std::string path = dir.file("bad.jsonl");
  write_file(path, record("Hi", "Hello") + "\n\n" + c.line + "\n" + record("Yes?", "No.") + "\n");
  SampleFormat fmt = small_format(c.max_seq_len);
  fmt.truncate_over_long = c.truncate;
  const Dataset ds(path, dir.images(), minimind(), fmt);
  ASSERT_EQ(ds.size(), 3u);
  ASSERT_TRUE(ds.load(0).sample) << ds.load(0).skip_reason;
  ASSERT_TRUE(ds.load(2).sample) << ds.load(2).skip_reason;

  const SampleResult r = ds.load(1);
  EXPECT_FALSE(r.sample);
  EXPECT_THAT(r.skip_reason, HasSubstr(c.reason));

  std::vector<std::string> warnings;
  LoaderOptions opt;
  opt.micro_batch = 3;
  opt.max_bad_fraction = 0.5;
  opt.warn = [&](const std::string& w) { warnings.push_back(w); };
  Loader loader(ds, opt);
  const Step step = loader.next_step();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("warning: " + path + ":3: skipped sample: "));
  EXPECT_THAT(warnings[0], HasSubstr(c.reason));
  EXPECT_EQ(warnings[0].find('\n'), std::string::npos);
  EXPECT_EQ(step.skipped(), 1);
  ASSERT_EQ(step.micro.size(), 1u);
  EXPECT_EQ(step.micro[0].batch.ids.size(0), 2);
  EXPECT_THAT(step.micro[0].samples, testing::UnorderedElementsAre(0, 2));
  ASSERT_TRUE(step.epoch_end);
  EXPECT_EQ(step.epoch_end->skipped, 1);
  EXPECT_EQ(loader.state().skipped_total, 1);
  EXPECT_EQ(loader.state().seen_total, 3);
}

INSTANTIATE_TEST_SUITE_P(Cases, BadInput, testing::ValuesIn(bad_cases()),
                         [](const testing::TestParamInfo<BadCase>& info) {
                           return std::string(info.param.name);
                         });

// Without a warning sink the line goes to stderr, once.
TEST(Dataset, WarningGoesToStderrByDefault) {
  ScratchDir dir;
  const std::string path = dir.file("d.jsonl");
  write_file(path, record("Hi", "Hello") + "\n{oops\n");
  const Dataset ds(path, "", minimind(), small_format());
  LoaderOptions opt;
  opt.micro_batch = 2;
  opt.max_bad_fraction = 0.5;
  Loader loader(ds, opt);
  testing::internal::CaptureStderr();
  loader.next_step();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, testing::StartsWith("warning: " + path + ":2: skipped sample: malformed JSON"));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1);
}

}  // namespace
}  // namespace minivlm
