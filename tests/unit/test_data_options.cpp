// The data options of SampleFormat (data/dataset.h, SPEC §4.2, §4.4): over-long samples skipped or
// truncated, image paths kept inside the images directory, and MiniMind-V's random system prompt,
// empty think block and placeholder images, drawn from (seed, epoch, index) alone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "test_dataset_fixtures.h"

namespace minivlm {
namespace {

using testing::AllOf;
using testing::HasSubstr;
using namespace testing_data;

namespace fs = std::filesystem;

std::string words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "word ";
  return s;
}

std::string decode_supervised(const Tokenizer& tok, const Sample& s) {
  std::vector<int32_t> ids;
  for (size_t t = 0; t < s.ids.size(); ++t)
    if (s.labels[t]) ids.push_back(s.ids[t]);
  return tok.decode(ids);
}

// ---- over-long samples ----------------------------------------------------------------------

TEST(OverLong, SkippedByDefaultNamingTheCountAndTheLimit) {
  ScratchDir dir;
  write_file(dir.file("d.jsonl"), record("Talk.", words(40)) + "\n");
  const Dataset full(dir.file("d.jsonl"), "", minimind(), small_format(1000));
  const SampleResult f = full.load(0);
  ASSERT_TRUE(f.sample) << f.skip_reason;
  const size_t n = f.sample->ids.size();
  EXPECT_EQ(f.tokens, static_cast<int64_t>(n));
  ASSERT_GT(n, 20u);

  const Dataset cut(dir.file("d.jsonl"), "", minimind(), small_format(20));
  const SampleResult c = cut.load(0);
  ASSERT_FALSE(c.sample);
  EXPECT_EQ(c.skip_reason, "over-long: " + std::to_string(n) +
                               " tokens exceed max_seq_len 20 (--over-long truncate cuts such "
                               "samples instead)");
  EXPECT_EQ(c.tokens, static_cast<int64_t>(n));
}

// max_seq_len never exceeds the model's context: a longer sample is skipped, not run.
TEST(OverLong, TheModelsContextIsTheLimit) {
  ScratchDir dir;
  write_file(dir.file("d.jsonl"), record("Talk.", words(40)) + "\n");
  ModelConfig c = small_model();
  c.llm.max_position_embeddings = 16;
  const SampleFormat fmt = SampleFormat::for_model(c, 4096);
  EXPECT_EQ(fmt.max_seq_len, 16);
  const Dataset ds(dir.file("d.jsonl"), "", minimind(), fmt);
  EXPECT_THAT(ds.load(0).skip_reason, HasSubstr("exceed max_seq_len 16"));
}

TEST(OverLong, TruncatedWhenAsked) {
  ScratchDir dir;
  write_file(dir.file("d.jsonl"), record("Talk.", words(40)) + "\n");
  SampleFormat fmt = small_format(20);
  fmt.truncate_over_long = true;
  const Dataset full(dir.file("d.jsonl"), "", minimind(), small_format(1000));
  const Dataset cut(dir.file("d.jsonl"), "", minimind(), fmt);
  const SampleResult f = full.load(0), c = cut.load(0);
  ASSERT_TRUE(f.sample && c.sample) << c.skip_reason;
  EXPECT_TRUE(c.sample->truncated);
  EXPECT_EQ(c.tokens, static_cast<int64_t>(f.sample->ids.size()));
  EXPECT_EQ(c.sample->ids, std::vector<int32_t>(f.sample->ids.begin(), f.sample->ids.begin() + 20));
}

// ---- image paths ----------------------------------------------------------------------------

struct PathCase {
  const char* name;
  std::string image;   // the record's "image" field value (a JSON string's content)
  std::string reason;  // part of the skip reason; empty: the record loads
  bool loads_when_allowed = true;
};

class ImagePaths : public testing::TestWithParam<PathCase> {};

// images/ holds a.png, a link to it and a link to ../outside.png, which exists beside images/.
TEST_P(ImagePaths, OnlyUnderTheImagesDirectory) {
  const PathCase& c = GetParam();
  ScratchDir dir;
  write_png(dir.image("a.png"), 16, 16, 1);
  write_png(dir.file("outside.png"), 16, 16, 2);
  fs::create_directory(dir.image("sub"));
  fs::create_symlink(dir.file("outside.png"), dir.image("escape.png"));
  fs::create_symlink("a.png", dir.image("alias.png"));
  fs::create_directory_symlink(dir.file(""), dir.image("up"));
  std::string image = c.image;
  if (image.find("@ABS@") == 0) image = dir.file("outside.png");
  write_file(dir.file("d.jsonl"), record("Hi", "Yo", "\"" + image + "\"") + "\n");
  for (const bool video : {false, true}) {
    SCOPED_TRACE(video ? "video" : "image");
    std::string line = record("Hi", "Yo", "\"" + image + "\"");
    if (video) line.replace(line.find("\"image\""), 7, "\"video\"");
    write_file(dir.file("d.jsonl"), line + "\n");
    const Dataset ds(dir.file("d.jsonl"), dir.images(), minimind(), small_format());
    const SampleResult r = ds.load(0);
    if (c.reason.empty()) {
      if (!video) {
        EXPECT_TRUE(r.sample) << r.skip_reason;
      }
      continue;
    }
    ASSERT_FALSE(r.sample);
    EXPECT_THAT(r.skip_reason,
                AllOf(HasSubstr(std::string(video ? "video" : "image") + " path '" + image +
                                "' is outside the images directory " + dir.images()),
                      HasSubstr(c.reason)));
    if (video) continue;
    SampleFormat allowed = small_format();
    allowed.allow_images_outside = true;
    const Dataset open(dir.file("d.jsonl"), dir.images(), minimind(), allowed);
    const SampleResult o = open.load(0);
    EXPECT_EQ(o.sample.has_value(), c.loads_when_allowed) << o.skip_reason;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ImagePaths,
    testing::Values(PathCase{"Plain", "a.png", ""}, PathCase{"InsideLink", "alias.png", ""},
                    PathCase{"DownAndUp", "sub/../a.png", ""},
                    PathCase{"GoesUp", "../outside.png", "goes up with .."},
                    PathCase{"GoesUpAndBack", "sub/../../images/a.png", "goes up with .."},
                    PathCase{"Absolute", "@ABS@", "an absolute path"},
                    PathCase{"EtcPasswd", "/etc/passwd", "an absolute path", false},
                    PathCase{"LinkOutside", "escape.png", "a symbolic link to "},
                    PathCase{"DirectoryLinkOutside", "up/outside.png", "a symbolic link to "}),
    [](const testing::TestParamInfo<PathCase>& info) { return std::string(info.param.name); });

// ---- MiniMind-V's system prompts --------------------------------------------------------------

// The list is MiniMind-V's (dataset/lm_dataset.py SYSTEM_PROMPTS), in its order.
TEST(SystemPrompts, AreMiniMindVs) {
  const std::vector<std::string>& p = minimind_system_prompts();
  ASSERT_EQ(p.size(), 10u);
  EXPECT_EQ(p[0], "你是一个知识丰富的AI，尽力为用户提供准确的信息。");
  EXPECT_EQ(p[5], "You are a helpful AI assistant.");
  EXPECT_EQ(p[9], "You are minimind, a small but useful language model.");
  EXPECT_EQ(std::set<std::string>(p.begin(), p.end()).size(), 10u);
}

// 200 text records, every 10th with its own system message.
std::string conversations(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i % 10 == 0)
      s += R"({"conversations": [{"role": "system", "content": "Own."}, )"
           R"({"role": "user", "content": "Q)" +
           std::to_string(i) + R"("}, {"role": "assistant", "content": "A."}]})" + "\n";
    else
      s += record("Q" + std::to_string(i), "A.") + "\n";
  }
  return s;
}

TEST(SystemPrompts, ProbabilityOneAddsOneFromTheListWhereThereIsNone) {
  ScratchDir dir;
  write_file(dir.file("d.jsonl"), conversations(200));
  SampleFormat fmt = small_format();
  fmt.system_prompt_prob = 1.0;
  const Dataset ds(dir.file("d.jsonl"), "", minimind(), fmt);
  std::set<std::string> used;
  for (size_t i = 0; i < ds.size(); ++i) {
    const SampleResult r = ds.load(i);
    ASSERT_TRUE(r.sample) << r.skip_reason;
    const std::string q = "Q" + std::to_string(i);
    if (i % 10 == 0) {
      EXPECT_EQ(r.sample->ids,
                encode_chat(minimind(), {{"system", "Own."}, {"user", q}, {"assistant", "A."}}, {},
                            "<|image_pad|>")
                    .ids);
      continue;
    }
    const std::string text = minimind().decode(r.sample->ids);
    const std::string head = "<|im_start|>system\n";
    ASSERT_EQ(text.rfind(head, 0), 0u) << text;
    const std::string system = text.substr(head.size(), text.find("<|im_end|>") - head.size());
    const auto& prompts = minimind_system_prompts();
    ASSERT_NE(std::find(prompts.begin(), prompts.end(), system), prompts.end()) << system;
    used.insert(system);
    const EncodedChat expected = encode_chat(
        minimind(), {{"system", system}, {"user", q}, {"assistant", "A."}}, {}, "<|image_pad|>");
    EXPECT_EQ(r.sample->ids, expected.ids);
    EXPECT_EQ(r.sample->labels, expected.labels);
  }
  EXPECT_EQ(used.size(), 10u);  // 180 uniform draws of 10
}

TEST(SystemPrompts, ProbabilityZeroAddsNone) {
  ScratchDir dir;
  write_file(dir.file("d.jsonl"), conversations(50));
  const Dataset ds(dir.file("d.jsonl"), "", minimind(), small_format());
  for (size_t i = 1; i < ds.size(); ++i) {
    if (i % 10 == 0) continue;
    EXPECT_EQ(ds.load(i).sample->ids,
              encode_chat(minimind(), {{"user", "Q" + std::to_string(i)}, {"assistant", "A."}}, {},
                          "<|image_pad|>")
                  .ids);
  }
}

bool has_system_turn(const Sample& s) {
  return minimind().decode(s.ids).rfind("<|im_start|>system", 0) == 0;
}

// A draw is a function of (seed, epoch, index): the same on every load, different across epochs
// and seeds, near the probability over many records.
TEST(SystemPrompts, DrawsDependOnSeedEpochAndIndexOnly) {
  ScratchDir dir;
  std::string lines;
  for (int i = 0; i < 400; ++i) lines += record("Q", "A.") + "\n";
  write_file(dir.file("d.jsonl"), lines);
  SampleFormat fmt = small_format();
  fmt.system_prompt_prob = 0.2;
  const Dataset ds(dir.file("d.jsonl"), "", minimind(), fmt);
  fmt.seed = 43;
  const Dataset other_seed(dir.file("d.jsonl"), "", minimind(), fmt);
  int with = 0, epoch_differs = 0, seed_differs = 0;
  for (size_t i = 0; i < ds.size(); ++i) {
    const Sample a = *ds.load(i, 3).sample;
    EXPECT_EQ(a.ids, ds.load(i, 3).sample->ids);
    with += has_system_turn(a);
    epoch_differs += has_system_turn(a) != has_system_turn(*ds.load(i, 4).sample);
    seed_differs += has_system_turn(a) != has_system_turn(*other_seed.load(i, 3).sample);
  }
  EXPECT_NEAR(with / 400.0, 0.2, 0.07);
  EXPECT_GT(epoch_differs, 20);
  EXPECT_GT(seed_differs, 20);
}

// The loader's batches do not depend on its thread count, and a resumed loader continues with the
// same draws.
TEST(SystemPrompts, SameBatchesWithAnyWorkerCountAndAfterResume) {
  ScratchDir dir;
  std::string lines;
  for (int i = 0; i < 48; ++i) lines += record("Q" + std::to_string(i), "A.") + "\n";
  write_file(dir.file("d.jsonl"), lines);
  SampleFormat fmt = small_format();
  fmt.system_prompt_prob = 0.5;
  const Dataset ds(dir.file("d.jsonl"), "", minimind(), fmt);
  const auto make = [&](int workers) {
    LoaderOptions o;
    o.micro_batch = 4;
    o.grad_accum = 2;
    o.workers = workers;
    o.prefetch_depth = 6;
    return std::make_unique<Loader>(ds, o);
  };
  auto one = make(1), four = make(4);
  std::vector<LoaderState> states;
  std::vector<std::vector<int64_t>> ids;
  for (int s = 0; s < 15; ++s) {  // 6 steps per epoch: into epoch 2
    states.push_back(one->state());
    const Step a = one->next_step(), b = four->next_step();
    for (size_t m = 0; m < a.micro.size(); ++m) {
      EXPECT_EQ(a.micro[m].samples, b.micro[m].samples);
      EXPECT_EQ(a.micro[m].batch.ids.to_int_vector(), b.micro[m].batch.ids.to_int_vector());
      ids.push_back(a.micro[m].batch.ids.to_int_vector());
      // Row k is the record loaded directly with the step's epoch.
      const Sample direct = *ds.load(static_cast<size_t>(a.micro[m].samples[0]), a.epoch).sample;
      const std::vector<int64_t> row = a.micro[m].batch.ids.to_int_vector();
      EXPECT_TRUE(std::equal(direct.ids.begin(), direct.ids.end(), row.begin()));
    }
  }
  auto resumed = make(3);
  resumed->seek(states[8]);
  for (int s = 8; s < 15; ++s) {
    const Step r = resumed->next_step();
    for (size_t m = 0; m < r.micro.size(); ++m)
      EXPECT_EQ(r.micro[m].batch.ids.to_int_vector(), ids[static_cast<size_t>(s) * 2 + m]);
  }
}

// ---- the empty think block ----------------------------------------------------------------------

const Tokenizer& minimind3() {
  static const Tokenizer tok = [] {
    Tokenizer t = Tokenizer::from_file(MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer.json");
    t.set_chat_template(ChatTemplate::minimind3);
    return t;
  }();
  return tok;
}

// keep_empty_think F keeps the template's "<think>\n\n</think>\n\n" in about F of the samples and
// removes it from the others exactly as MiniMind-V does (a string replace on the rendered text);
// the supervised tokens are the assistant turns either way. A reply with reasoning keeps its block.
TEST(EmptyThink, KeptInAboutTheFractionAndLabelsFollow) {
  ScratchDir dir;
  std::string lines;
  const int n = 400;
  for (int i = 0; i < n; ++i)
    lines += R"({"conversations": [{"role": "user", "content": "Q"}, )"
             R"({"role": "assistant", "content": "A1."}, {"role": "user", "content": "More"}, )"
             R"({"role": "assistant", "content": "A2."}]})"
             "\n";
  lines += R"({"conversations": [{"role": "user", "content": "Q"}, )"
           R"({"role": "assistant", "content": "<think>Hmm.</think>A."}]})"
           "\n";
  write_file(dir.file("d.jsonl"), lines);
  SampleFormat fmt = small_format();
  fmt.keep_empty_think = 0.2;
  const Dataset ds(dir.file("d.jsonl"), "", minimind3(), fmt);
  const Dataset keep_all(dir.file("d.jsonl"), "", minimind3(), small_format());
  const std::string block = "<think>\n\n</think>\n\n";
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    const SampleResult r = ds.load(static_cast<size_t>(i), 1);
    ASSERT_TRUE(r.sample) << r.skip_reason;
    const std::string full = minimind3().decode(keep_all.load(static_cast<size_t>(i)).sample->ids);
    ASSERT_NE(full.find(block), std::string::npos);
    const std::string text = minimind3().decode(r.sample->ids);
    const std::string supervised = decode_supervised(minimind3(), *r.sample);
    if (text == full) {
      ++kept;
      EXPECT_EQ(supervised, block + "A1.<|im_end|>\n" + block + "A2.<|im_end|>\n");
      continue;
    }
    std::string removed = full;
    for (size_t at; (at = removed.find(block)) != std::string::npos;)
      removed.erase(at, block.size());
    EXPECT_EQ(text, removed);
    EXPECT_EQ(r.sample->ids, minimind3().encode(removed));
    EXPECT_EQ(supervised, "A1.<|im_end|>\nA2.<|im_end|>\n");
  }
  EXPECT_NEAR(kept / static_cast<double>(n), 0.2, 0.07);
  const SampleResult reasoning = ds.load(static_cast<size_t>(n));
  ASSERT_TRUE(reasoning.sample);
  EXPECT_EQ(decode_supervised(minimind3(), *reasoning.sample),
            "<think>\nHmm.\n</think>\n\nA.<|im_end|>\n");
}

// Off (1, the default) and in a template without a think block, nothing changes.
TEST(EmptyThink, NoChangeWhenOffOrWithoutTheBlock) {
  ScratchDir dir;
  write_file(dir.file("d.jsonl"), record("Q", "A.") + "\n");
  SampleFormat none = small_format();
  none.keep_empty_think = 0.0;
  EXPECT_EQ(Dataset(dir.file("d.jsonl"), "", minimind(), none).load(0).sample->ids,
            Dataset(dir.file("d.jsonl"), "", minimind(), small_format()).load(0).sample->ids);
  const SampleResult kept = Dataset(dir.file("d.jsonl"), "", minimind3(), small_format()).load(0);
  EXPECT_EQ(decode_supervised(minimind3(), *kept.sample), "<think>\n\n</think>\n\nA.<|im_end|>\n");
  const SampleResult removed = Dataset(dir.file("d.jsonl"), "", minimind3(), none).load(0);
  EXPECT_EQ(decode_supervised(minimind3(), *removed.sample), "A.<|im_end|>\n");
}

// ---- placeholder images
// ---------------------------------------------------------------------------

// MiniMind-V's text rows carry a placeholder image their text never refers to. With
// ignore_unreferenced_images they are text samples (the image is not even read); without, the
// image is put before the first user message (SPEC §3).
TEST(PlaceholderImages, IgnoredWithTheOption) {
  ScratchDir dir;
  write_png(dir.image("black.png"), 8, 8, 0);
  write_png(dir.image("a.png"), 16, 16, 1);
  write_file(dir.file("d.jsonl"), record("Hi", "Yo", R"("black.png")") + "\n" +
                                      record("Hi", "Yo", R"("gone.png")") + "\n" +
                                      record("Look", "Yo", R"("a.png")", "<image>") + "\n" +
                                      record("Look", "Yo", R"("a.png, a.png")", "<image>") + "\n");
  SampleFormat fmt = small_format();
  fmt.ignore_unreferenced_images = true;
  const Dataset on(dir.file("d.jsonl"), dir.images(), minimind(), fmt);
  const Dataset off(dir.file("d.jsonl"), dir.images(), minimind(), small_format());
  const std::vector<int32_t> text_only =
      encode_chat(minimind(), {{"user", "Hi"}, {"assistant", "Yo"}}, {}, "<|image_pad|>").ids;
  for (size_t i : {0u, 1u}) {
    const SampleResult r = on.load(i);
    ASSERT_TRUE(r.sample) << r.skip_reason;
    EXPECT_EQ(r.sample->num_images, 0);
    EXPECT_TRUE(r.sample->pixels.empty());
    EXPECT_EQ(r.sample->ids, text_only);
  }
  const SampleResult prepended = off.load(0);
  ASSERT_TRUE(prepended.sample);
  EXPECT_EQ(prepended.sample->num_images, 1);
  EXPECT_THAT(off.load(1).skip_reason, HasSubstr("missing image"));
  // Referenced images are read as always, and a count mismatch is still bad.
  const SampleResult image = on.load(2);
  ASSERT_TRUE(image.sample) << image.skip_reason;
  EXPECT_EQ(image.sample->ids, off.load(2).sample->ids);
  EXPECT_EQ(image.sample->num_images, 1);
  EXPECT_THAT(on.load(3).skip_reason, HasSubstr("1 <image> placeholders but the sample has 2"));
}

}  // namespace
}  // namespace minivlm
