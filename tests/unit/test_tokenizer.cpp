// Tokenizer against the Hugging Face tokenizers library (goldens from
// scripts/reference/tokenizer_goldens.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "text/tokenizer.h"

namespace minivlm {
namespace {

using nlohmann::json;

const std::string kGoldens = MINIVLM_SOURCE_DIR "/tests/goldens/tokenizer/";
const std::string kMiniMind = MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer.json";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> rows;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
  EXPECT_FALSE(rows.empty()) << path;
  return rows;
}

const Tokenizer& minimind() {
  static const Tokenizer tok = Tokenizer::from_file(kMiniMind);
  return tok;
}

// The same tokenizer.json with every merge written in the other form ("a b" <-> ["a", "b"]).
std::string flip_merge_form(const std::string& text) {
  json j = json::parse(text);
  for (json& m : j["model"]["merges"]) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      m = json::array({s.substr(0, space), s.substr(space + 1)});
    } else {
      m = m[0].get<std::string>() + " " + m[1].get<std::string>();
    }
  }
  return j.dump();
}

void expect_goldens(const Tokenizer& tok, const std::vector<json>& rows) {
  size_t mismatches = 0;
  for (const json& row : rows) {
    const std::string text = row["text"];
    const std::vector<int32_t> want = row["ids"];
    const std::vector<int32_t> got = tok.encode(text);
    if (got != want && ++mismatches <= 5)
      ADD_FAILURE() << "text " << json(text).dump() << "\n  got  " << json(got).dump()
                    << "\n  want " << json(want).dump();
  }
  EXPECT_EQ(mismatches, 0u) << "of " << rows.size() << " goldens";
}

TEST(Tokenizer, MiniMindSpecialIds) {
  const Tokenizer& tok = minimind();
  EXPECT_EQ(tok.vocab_size(), 6400);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 0);
  EXPECT_EQ(tok.token_to_id("<|im_start|>"), 1);
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), 2);
  EXPECT_EQ(tok.token_to_id("<|image_pad|>"), 12);
  EXPECT_EQ(tok.token_to_id("Ċ"), 234);  // a BPE token, by its vocabulary spelling
  EXPECT_TRUE(tok.is_special(12));
  EXPECT_FALSE(tok.is_special(25));  // <think> is added but not special
  EXPECT_FALSE(tok.find_token("<|no_such|>").has_value());
  EXPECT_THAT([&] { tok.token_to_id("<|no_such|>"); },
              testing::ThrowsMessage<Error>(testing::HasSubstr("'<|no_such|>'")));
  EXPECT_EQ(tok.encode("<|im_start|>assistant\n"), (std::vector<int32_t>{1, 1388, 570, 811, 234}));
}

TEST(Tokenizer, MiniMindGoldens) {
  expect_goldens(minimind(), read_jsonl(kGoldens + "minimind.jsonl"));
}

TEST(Tokenizer, MiniMindWithStringMerges) {
  const Tokenizer tok = Tokenizer::from_json(flip_merge_form(read_file(kMiniMind)), "flipped");
  expect_goldens(tok, read_jsonl(kGoldens + "minimind.jsonl"));
}

TEST(Tokenizer, DecodeRoundTripAndSkipSpecial) {
  const Tokenizer& tok = minimind();
  size_t with_special = 0;
  for (const json& row : read_jsonl(kGoldens + "minimind.jsonl")) {
    const std::string text = row["text"];
    const std::vector<int32_t> ids = row["ids"];
    EXPECT_EQ(tok.decode(ids), text);
    const std::string skip = row.value("skip", text);
    EXPECT_EQ(tok.decode(ids, true), skip) << json(text).dump();
    with_special += row.contains("skip");
  }
  EXPECT_GT(with_special, 100u);  // the goldens do exercise skip_special
  EXPECT_EQ(tok.decode({1, 1388, 570, 811, 234, 25, 2}, true), "assistant\n<think>");
}

TEST(Tokenizer, DecodeInvalidUtf8LikeTheReference) {
  const Tokenizer& tok = minimind();
  for (const json& row : read_jsonl(kGoldens + "decode.jsonl")) {
    const std::vector<int32_t> ids = row["ids"];
    EXPECT_EQ(tok.decode(ids), row["text"].get<std::string>()) << json(ids).dump();
    EXPECT_EQ(tok.decode(ids, true), row["skip"].get<std::string>()) << json(ids).dump();
  }
  EXPECT_THAT([&] { tok.decode({6400}); },
              testing::ThrowsMessage<Error>(testing::HasSubstr("id 6400")));
}

TEST(Tokenizer, OffsetsTileTheText) {
  const Tokenizer& tok = minimind();
  for (const json& row : read_jsonl(kGoldens + "minimind.jsonl")) {
    const std::string text = row["text"];
    const Tokenizer::Encoding e = tok.encode_with_offsets(text);
    ASSERT_EQ(e.ids, row["ids"].get<std::vector<int32_t>>());
    ASSERT_EQ(e.starts.size(), e.ids.size());
    size_t at = 0;
    for (size_t i = 0; i < e.ids.size(); ++i) {
      const std::string& bytes = tok.token_bytes(e.ids[i]);
      ASSERT_EQ(e.starts[i], at) << json(text).dump() << " token " << i;
      ASSERT_EQ(text.compare(at, bytes.size(), bytes), 0) << json(text).dump() << " token " << i;
      at += bytes.size();
    }
    EXPECT_EQ(at, text.size());
  }
}

TEST(Tokenizer, TinyPairMergesAndAddedTokenFlags) {
  const std::string json_text = read_file(kGoldens + "tiny.json");
  ASSERT_TRUE(json::parse(json_text)["model"]["merges"][0].is_array());
  const std::vector<json> rows = read_jsonl(kGoldens + "tiny.jsonl");
  const Tokenizer tok = Tokenizer::from_json(json_text, "tiny.json");
  expect_goldens(tok, rows);
  expect_goldens(Tokenizer::from_json(flip_merge_form(json_text), "tiny flipped"), rows);
  // By hand: add_prefix_space puts "Ġ" (37) before every text segment; [MASK] (1) swallows the
  // spaces around it; "word" (3) matches only as a whole word.
  const int32_t a = tok.token_to_id("a"), b = tok.token_to_id("b"), g = tok.token_to_id("Ġ");
  EXPECT_EQ(g, 37);
  EXPECT_EQ(tok.encode("a   [MASK]   b"), (std::vector<int32_t>{g, a, 1, g, b}));
  EXPECT_EQ(tok.encode("a word b"), (std::vector<int32_t>{g, a, g, 3, g, b}));
  EXPECT_THAT(tok.encode("swords"), testing::Not(testing::Contains(3)));
}

TEST(Tokenizer, ConcurrentEncodingAgrees) {
  const Tokenizer tok = Tokenizer::from_file(kMiniMind);  // a fresh, empty cache
  const std::vector<json> rows = read_jsonl(kGoldens + "minimind.jsonl");
  std::vector<size_t> bad(2, 0);
  std::vector<std::thread> threads;
  for (size_t w = 0; w < 2; ++w)
    threads.emplace_back([&, w] {
      for (size_t k = 0; k < rows.size(); ++k) {
        const json& row = rows[(k * 7 + w * 1000) % rows.size()];
        if (tok.encode(row["text"].get<std::string>()) != row["ids"].get<std::vector<int32_t>>())
          ++bad[w];
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad[0] + bad[1], 0u);
}

std::string tiny_with(const std::function<void(json&)>& edit) {
  json j = json::parse(read_file(kGoldens + "tiny.json"));
  edit(j);
  return j.dump();
}

void expect_load_error(const std::string& text, const std::string& needle) {
  EXPECT_THAT([&] { Tokenizer::from_json(text, "edited.json"); },
              testing::ThrowsMessage<Error>(
                  testing::AllOf(testing::HasSubstr("edited.json"), testing::HasSubstr(needle))));
}

// transformers writes a TemplateProcessing post-processor even when it adds nothing ("$A" alone):
// that one loads and encodes as without it; one that adds a BOS is refused.
TEST(Tokenizer, IdentityTemplateProcessingIsAcceptedOneAddingTokensIsNot) {
  const json a = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};
  const json b = {{"Sequence", {{"id", "B"}, {"type_id", 1}}}};
  const std::string identity = tiny_with([&](json& j) {
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", json::array({a})},
                           {"pair", json::array({a, b})},
                           {"special_tokens", json::object()}};
  });
  const Tokenizer plain = Tokenizer::from_json(read_file(kGoldens + "tiny.json"), "tiny.json");
  EXPECT_EQ(Tokenizer::from_json(identity, "identity.json").encode("hello world"),
            plain.encode("hello world"));
  expect_load_error(tiny_with([&](json& j) {
                      j["post_processor"] = {
                          {"type", "TemplateProcessing"},
                          {"single", json::array({json{{"SpecialToken", {{"id", "<s>"}}}}, a})}};
                    }),
                    "post_processor 'TemplateProcessing' is not supported");
}

// data/tokenizer/tokenizer.json with the pre-tokenizer SmolLM2 publishes (Digits, then ByteLevel)
// in place of its own, as scripts/reference/tokenizer_digits_goldens.py builds its variants.
std::string minimind_with_digits(const std::string& variant) {
  const bool individual = variant != "runs", prefix = variant == "individual_prefix";
  json j = json::parse(read_file(kMiniMind));
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers", json::array({json{{"type", "Digits"}, {"individual_digits", individual}},
                                     json{{"type", "ByteLevel"},
                                          {"add_prefix_space", prefix},
                                          {"trim_offsets", true},
                                          {"use_regex", true}}})}};
  return j.dump();
}

TEST(Tokenizer, DigitsThenByteLevelGoldens) {
  std::map<std::string, std::vector<json>> by_variant;
  for (const json& row : read_jsonl(kGoldens + "digits.jsonl"))
    by_variant[row["variant"].get<std::string>()].push_back(row);
  ASSERT_EQ(by_variant.size(), 3u);
  for (const auto& [variant, rows] : by_variant) {
    SCOPED_TRACE(variant);
    EXPECT_GT(rows.size(), 300u);
    const Tokenizer tok = Tokenizer::from_json(minimind_with_digits(variant), variant);
    expect_goldens(tok, rows);
    if (variant == "individual_prefix") continue;  // the prefix spaces are not in the text
    for (const json& row : rows) {
      const std::string text = row["text"];
      const Tokenizer::Encoding e = tok.encode_with_offsets(text);
      EXPECT_EQ(tok.decode(e.ids), text);
      ASSERT_EQ(e.starts.size(), e.ids.size());
      size_t at = 0;
      for (size_t i = 0; i < e.ids.size(); ++i) {
        ASSERT_EQ(e.starts[i], at) << json(text).dump() << " token " << i;
        at += tok.token_bytes(e.ids[i]).size();
      }
      EXPECT_EQ(at, text.size());
    }
  }
}

// By hand: Digits isolates each digit (or each run of them) before ByteLevel's regex, so a space is
// no longer glued to the number after it, and a special token is still cut out whole first.
TEST(Tokenizer, DigitsSplitBeforeByteLevel) {
  const Tokenizer individual = Tokenizer::from_json(minimind_with_digits("individual"), "ind");
  const Tokenizer runs = Tokenizer::from_json(minimind_with_digits("runs"), "runs");
  const int32_t a = individual.token_to_id("a"), g = individual.token_to_id("Ġ"),
                one = individual.token_to_id("1"), two = individual.token_to_id("2"),
                im_start = individual.token_to_id("<|im_start|>");
  EXPECT_EQ(individual.encode("a 12"), (std::vector<int32_t>{a, g, one, two}));
  EXPECT_EQ(individual.encode("1<|im_start|>2"), (std::vector<int32_t>{one, im_start, two}));
  EXPECT_EQ(runs.encode("a 12"), (std::vector<int32_t>{a, g, runs.token_to_id("12")}));
  EXPECT_NE(minimind().encode("a 12"), individual.encode("a 12"));
  // A run of digits is one piece for BPE: "2024" merges in `runs` as in plain ByteLevel.
  EXPECT_EQ(runs.encode("2024"), minimind().encode("2024"));
  EXPECT_EQ(individual.encode("2024").size(), 4u);
}

TEST(Tokenizer, LoadErrorsNameTheProblem) {
  expect_load_error("{not json", "not valid JSON");
  expect_load_error(tiny_with([](json& j) { j["normalizer"] = {{"type", "NFC"}}; }), "'NFC'");
  expect_load_error(tiny_with([](json& j) {
                      j["pre_tokenizer"] = {{"type", "Whitespace"}};
                    }),
                    "'Whitespace'");
  const auto sequence = [](std::vector<json> list) {
    return tiny_with([&](json& j) {
      j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", list}};
    });
  };
  const json digits = {{"type", "Digits"}, {"individual_digits", true}};
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}};
  const json whitespace = {{"type", "Whitespace"}};
  expect_load_error(sequence({digits, whitespace}), "pre_tokenizer 'Sequence[Digits, Whitespace]'");
  expect_load_error(sequence({byte_level, digits}), "'Sequence[ByteLevel, Digits]'");
  expect_load_error(sequence({whitespace}), "'Sequence[Whitespace]'");
  expect_load_error(sequence({digits}), "'Sequence[Digits]'");
  expect_load_error(sequence({digits, byte_level, digits}),
                    "'Sequence[Digits, ByteLevel, Digits]'");
  expect_load_error(tiny_with([](json& j) {
                      j["pre_tokenizer"] = {{"type", "Sequence"}};
                    }),
                    "'Sequence[]'");
  EXPECT_NO_THROW(Tokenizer::from_json(sequence({digits, byte_level}), "digits.json"));
  expect_load_error(tiny_with([](json& j) {
                      j["model"]["merges"].push_back({"q", "zz"});
                    }),
                    "'zz' of merge 20");
  expect_load_error(tiny_with([](json& j) { j["model"]["merges"].push_back("a b c"); }),
                    "merge 20 'a b c'");
  expect_load_error(tiny_with([](json& j) { j["model"]["vocab"].erase("Ġ"); }), "byte 32");
  EXPECT_THAT([] { Tokenizer::from_file("/no/such/tokenizer.json"); },
              testing::ThrowsMessage<Error>(testing::HasSubstr("/no/such/tokenizer.json")));
}

}  // namespace
}  // namespace minivlm
