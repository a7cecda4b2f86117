// Broken and hostile inputs to every reader of structured files (JSON, config.json, tokenizer.json,
// chat templates, --config files, safetensors, trainer state, JSONL datasets): each is a
// minivlm::Error naming the file and the problem (or, for one dataset record, a skip reason),
// never a signal, a hang or unbounded memory. Non-regular files are refused by name without
// blocking.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/file_check.h"
#include "core/json_file.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/jsonl_index.h"
#include "data/record_source.h"
#include "data/video.h"
#include "io/safetensors.h"
#include "nn/config.h"
#include "test_dataset_fixtures.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/options.h"

namespace minivlm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;
using testing_data::ScratchDir;
using testing_data::write_file;

const std::string kTokenizer = MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer.json";
const std::string kTinyTokenizer = MINIVLM_SOURCE_DIR "/tests/goldens/tokenizer/tiny.json";

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

using testing_data::error_of;

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// Runs `f`, which must refuse `fifo` with an error containing `message`, within 20 s. Were it to
// block opening the FIFO, a writer is connected to release it and the test fails.
void expect_refused_without_blocking(const std::string& fifo, const std::function<void()>& f,
                                     const std::string& message) {
  auto result = std::async(std::launch::async, [&] { return error_of(f); });
  if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    ADD_FAILURE() << "blocked on the FIFO " << fifo;
  }
  const std::string err = result.get();
  EXPECT_THAT(err, HasSubstr(message));
  EXPECT_THAT(err, HasSubstr(fifo));
}

std::string make_fifo(const ScratchDir& dir, const std::string& name) {
  const std::string path = dir.file(name);
  EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0) << path;
  return path;
}

// ---- JSON nesting
// --------------------------------------------------------------------------------

TEST(HostileJson, DeepNestingIsASyntaxErrorNotAStackOverflow) {
  EXPECT_NO_THROW(parse_json(nested(kMaxJsonDepth), "ok"));
  for (size_t depth : {size_t(kMaxJsonDepth) + 1, size_t(100000), size_t(2000000)}) {
    SCOPED_TRACE(depth);
    EXPECT_THAT(error_of([&] { parse_json(nested(depth), "deep.json"); }),
                HasSubstr("deep.json: not valid JSON"));
    EXPECT_THROW(parse_json_limited(nested(depth)), json::parse_error);
    // Objects count as levels too, and so does an unterminated prefix.
    std::string objects;
    for (size_t i = 0; i < depth; ++i) objects += "{\"a\":";
    EXPECT_THROW(parse_json_limited(objects), json::parse_error);
  }
  EXPECT_THAT(error_of([] { parse_json(nested(200), "x"); }), HasSubstr("nested more than 128"));
}

TEST(HostileJson, NumberOverflowIsAParseError) {
  // nlohmann throws out_of_range for it, which escaped the dataset's parse_error handler (found by
  // fuzz_jsonl_record).
  for (const char* text : {"1e999", "[-888e8888888]", R"({"a": 1E400})"}) {
    SCOPED_TRACE(text);
    EXPECT_THROW(parse_json_limited(text), json::parse_error);
    EXPECT_THAT(error_of([&] { parse_json(text, "n.json"); }),
                HasSubstr("n.json: not valid JSON: [json.exception.parse_error.101] parse error: "
                          "number overflow parsing"));
  }
  EXPECT_EQ(parse_json_limited("1e308").get<double>(), 1e308);
}

TEST(HostileJson, ParseCallbackStillRuns) {
  int keys = 0;
  parse_json_limited(R"({"a": {"b": 1}, "c": 2})", [&](int, json::parse_event_t e, json&) {
    keys += e == json::parse_event_t::key;
    return true;
  });
  EXPECT_EQ(keys, 3);
}

TEST(HostileJson, FilesOfEveryReaderRefuseDeepNesting) {
  ScratchDir dir;
  const std::string deep = R"({"llm": )" + nested(50000) + "}";
  write_file(dir.file("config.json"), deep);
  EXPECT_THAT(error_of([&] { ModelConfig::from_file(dir.file("config.json")); }),
              HasSubstr("nested more than"));
  write_file(dir.file("tokenizer.json"), deep);
  EXPECT_THAT(error_of([&] { Tokenizer::from_file(dir.file("tokenizer.json")); }),
              HasSubstr("nested more than"));
  write_file(dir.file("opts.json"), deep);
  EXPECT_THAT(error_of([&] {
                parse_train_options(Stage::pretrain, {"--config", dir.file("opts.json")});
              }),
              HasSubstr("nested more than"));
  EXPECT_THAT(error_of([&] { parse_trainer_state(deep, "trainer_state.json"); }),
              HasSubstr("nested more than"));
}

// ---- non-regular files
// ---------------------------------------------------------------------------

TEST(HostileFiles, FifoIsRefusedByNameWithoutBlocking) {
  ScratchDir dir;
  const std::string fifo = make_fifo(dir, "pipe");
  const std::string what = "is a FIFO";
  expect_refused_without_blocking(
      fifo, [&] { read_json_file(fifo); }, what);
  expect_refused_without_blocking(
      fifo, [&] { ModelConfig::from_file(fifo); }, what);
  expect_refused_without_blocking(
      fifo, [&] { Tokenizer::from_file(fifo); }, what);
  expect_refused_without_blocking(
      fifo, [&] { SafeTensorsFile::open(fifo); }, what);
  expect_refused_without_blocking(
      fifo, [&] { load_rgb_image(fifo); }, what);
  expect_refused_without_blocking(
      fifo, [&] { probe_video(fifo); }, what);
  expect_refused_without_blocking(
      fifo, [&] { JsonlIndex index(fifo); }, what);
  const std::string parquet_fifo = make_fifo(dir, "pipe.parquet");
  expect_refused_without_blocking(
      parquet_fifo, [&] { open_record_source(parquet_fifo); }, what);
  expect_refused_without_blocking(
      fifo,
      [&] {
        parse_train_options(Stage::pretrain, {"--config", fifo});
      },
      what);
}

TEST(HostileFiles, FifoBesideATokenizerIsRefused) {
  ScratchDir dir;
  fs::copy_file(kTinyTokenizer, dir.file("tokenizer.json"));
  const std::string fifo = make_fifo(dir, "chat_template.jinja");
  expect_refused_without_blocking(
      fifo, [&] { Tokenizer::from_file(dir.file("tokenizer.json")); }, "is a FIFO");
}

TEST(HostileFiles, FifoTrainerStateIsRefused) {
  ScratchDir dir;
  fs::create_directory(dir.file("ck"));
  write_file(dir.file("ck/DONE"), "ok\n");
  save_safetensors(dir.file("ck/optimizer.safetensors"), {});
  const std::string fifo = make_fifo(dir, "ck/trainer_state.json");
  expect_refused_without_blocking(
      fifo, [&] { load_checkpoint(dir.file("ck")); }, "is a FIFO");
}

TEST(HostileFiles, DirectoriesAndDevicesAreRefusedByName) {
  ScratchDir dir;
  const std::string d = dir.images();
  EXPECT_THAT(error_of([&] { read_json_file(d); }), HasSubstr("is a directory"));
  EXPECT_THAT(error_of([&] { load_rgb_image(d); }), HasSubstr("is a directory"));
  EXPECT_THAT(error_of([&] { JsonlIndex index(d); }), HasSubstr("is a directory"));
  EXPECT_THAT(error_of([&] { probe_video(d); }), HasSubstr("is a directory"));
  EXPECT_THAT(error_of([&] { ModelConfig::from_file("/dev/zero"); }),
              HasSubstr("/dev/zero is a character device"));
  EXPECT_THAT(error_of([&] { load_rgb_image("/dev/urandom"); }),
              HasSubstr("is a character device"));
  EXPECT_THAT(error_of([&] { read_json_file(dir.file("absent.json"), "model config"); }),
              HasSubstr("cannot open model config"));
}

TEST(HostileFiles, ReadRegularFileEnforcesItsLimit) {
  ScratchDir dir;
  write_file(dir.file("f"), std::string(1000, 'x'));
  EXPECT_EQ(read_regular_file(dir.file("f"), "thing", 1000).size(), 1000u);
  EXPECT_THAT(error_of([&] { read_regular_file(dir.file("f"), "thing", 999); }),
              HasSubstr("more than the limit of 999"));
  write_file(dir.file("empty"), "");
  EXPECT_EQ(read_regular_file(dir.file("empty"), "thing", 10), "");
}

// ---- config.json
// ---------------------------------------------------------------------------------

std::string config_error(const json& llm, const json& vision = json::object(),
                         const json& projector = json::object()) {
  const auto object = [](const json& j) { return j.is_null() ? json::object() : j; };
  return error_of([&] {
    ModelConfig::from_json(
        {{"llm", object(llm)}, {"vision", object(vision)}, {"projector", object(projector)}},
        "cfg.json");
  });
}

TEST(HostileConfig, ImpossibleSizesAreRefusedByKey) {
  EXPECT_EQ(config_error(json::object()), "");
  struct Case {
    json llm, vision;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{{"hidden_size", 0}}, {}, "llm.hidden_size must be in [1, "},
      {{{"hidden_size", -512}}, {}, "llm.hidden_size must be in"},
      {{{"num_attention_heads", 0}}, {}, "llm.num_attention_heads must be in"},
      {{{"num_key_value_heads", -2}}, {}, "llm.num_key_value_heads must be in"},
      {{{"hidden_size", 500}}, {}, "not divisible by num_attention_heads"},
      {{{"head_dim", -2}}, {}, "llm.head_dim must be in"},
      {{{"intermediate_size", -64}}, {}, "llm.intermediate_size must be in"},
      {{{"num_hidden_layers", 1000000}}, {}, "llm.num_hidden_layers must be in"},
      {{{"max_position_embeddings", 0}}, {}, "llm.max_position_embeddings must be in"},
      {{{"vocab_size", 4294967296LL}}, {}, "llm.vocab_size must be in"},
      {{{"rope_theta", -1.0}}, {}, "llm.rope_theta must be positive"},
      {{{"rms_norm_eps", -1e-5}}, {}, "llm.rms_norm_eps must be non-negative"},
      // Not integers where integers go: nlohmann would truncate 3.5 and wrap 2^64 - 1.
      {{{"hidden_size", 512.5}}, {}, "llm.hidden_size: must be an integer, got 512.5"},
      {{{"num_hidden_layers", "8"}}, {}, "llm.num_hidden_layers: must be an integer"},
      {{{"vocab_size", 18446744073709551615ULL}}, {}, "is out of range"},
      {{{"rope_theta", "big"}}, {}, "llm.rope_theta: must be a number"},
      // Division by zero before: a SIGFPE.
      {{}, {{"num_attention_heads", 0}}, "vision.num_attention_heads must be in"},
      {{}, {{"patch_size", 0}}, "vision.patch_size must be in"},
      {{}, {{"image_size", -224}}, "vision.image_size must be in"},
      {{}, {{"hidden_size", 770}}, "vision.hidden_size 770 is not divisible"},
      {{}, {{"num_channels", 0}}, "vision.num_channels must be in"},
      {{}, {{"image_std", {0.5, 0.0, 0.5}}}, "vision.image_std must be positive"},
      {{}, {{"video_max_frames", 0}}, "vision.video_max_frames must be in"},
      {{}, {{"video_fps", 1e300}}, "vision.video_fps must be at most"},
      // Sizes within their ranges whose product (the parameter count) is absurd.
      {{{"vocab_size", 1 << 24},
        {"hidden_size", 1 << 20},
        {"num_attention_heads", 1024},
        {"num_key_value_heads", 1024}},
       {},
       "parameters (or overflow)"},
      {{{"num_hidden_layers", 1024},
        {"hidden_size", 1 << 20},
        {"num_attention_heads", 4096},
        {"num_key_value_heads", 4096},
        {"intermediate_size", 1 << 20},
        {"use_moe", true},
        {"num_experts", 4096}},
       {},
       "parameters (or overflow)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.llm.dump() + " " + c.vision.dump());
    const std::string err = config_error(c.llm, c.vision);
    EXPECT_THAT(err, HasSubstr(c.message));
    EXPECT_THAT(err, HasSubstr("cfg.json"));
  }
  EXPECT_THAT(config_error({}, {}, {{"pixel_shuffle", 0}}),
              HasSubstr("projector.pixel_shuffle must be in"));
}

TEST(HostileConfig, ErrorsQuoteAShortValueNotADump) {
  const std::string err = config_error({{"hidden_size", std::string(5000, 'x')}});
  EXPECT_THAT(err, HasSubstr("must be an integer"));
  EXPECT_LT(err.size(), 1000u);
}

// ---- tokenizer.json
// -------------------------------------------------------------------------------

std::string tokenizer_error(const std::function<void(json&)>& edit) {
  json j = json::parse(read_file(kTinyTokenizer));
  edit(j);
  return error_of([&] { Tokenizer::from_json(j.dump(), "edited.json"); });
}

TEST(HostileTokenizer, TokenIdsOutOfRangeAreRefused) {
  EXPECT_EQ(tokenizer_error([](json&) {}), "");
  // 2^32 used to wrap to id 0; 2^31 - 1 used to size every per-id table at 2^31 entries.
  for (const json& id : {json(4294967296LL), json(2147483647), json(-1), json(1.5), json("7"),
                         json(18446744073709551615ULL), json(Tokenizer::kMaxTokenId + 1)}) {
    SCOPED_TRACE(id.dump());
    EXPECT_THAT(tokenizer_error([&](json& j) { j["model"]["vocab"]["hostile"] = id; }),
                HasSubstr("vocab entry 'hostile' has"));
    EXPECT_THAT(tokenizer_error([&](json& j) {
                  j["added_tokens"] = json::array({{{"content", "<x>"}, {"id", id}}});
                }),
                HasSubstr("added token '<x>' has"));
  }
  EXPECT_EQ(tokenizer_error([](json& j) { j["model"]["vocab"]["top"] = Tokenizer::kMaxTokenId; }),
            "");
}

TEST(HostileTokenizer, WrongShapesAreErrorsNotExceptionsOfTheJsonLibrary) {
  const std::vector<std::function<void(json&)>> edits = {
      [](json& j) {
        j["model"]["vocab"] = json::array({1, 2});
      },
      [](json& j) { j["model"]["merges"] = "a b"; },
      [](json& j) {
        j["model"]["merges"] = json::array({json::array({1, 2})});
      },
      [](json& j) { j["added_tokens"] = 5; },
      [](json& j) { j["added_tokens"] = json::array({7}); },
      [](json& j) { j["pre_tokenizer"] = json::array(); },
      [](json& j) { j["model"] = nullptr; },
      [](json& j) { j = json::array(); },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_THAT(tokenizer_error(edits[i]), HasSubstr("edited.json"));
  }
}

// ---- safetensors
// ---------------------------------------------------------------------------------

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
  return out + header + data;
}

TEST(HostileSafetensors, OffsetsOutsideTheDataAreRefused) {
  ScratchDir dir;
  const std::string path = dir.file("t.safetensors");
  struct Case {
    std::string header, message;
  };
  const std::vector<Case> cases = {
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,9223372036854775808]}})",
       "is too large"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[9223372036854775800,9223372036854775808]}})",
       "is too large"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", "end before they begin"},
      {R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})",
       "is too large"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       "overlaps"},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "truncated file"},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "is negative"},
      {R"({"a":{"dtype":"F32","shape":)" + nested(100000) + R"(,"data_offsets":[0,8]}})",
       "nested more than"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header.substr(0, 120));
    write_file(path, safetensors_bytes(c.header, std::string(8, '\0')));
    const std::string err = error_of([&] { SafeTensorsFile::open(path); });
    EXPECT_THAT(err, HasSubstr(c.message));
    EXPECT_THAT(err, HasSubstr(path));
  }
  // A header length beyond the file, and one near 2^64 (no overflow in header + 8).
  for (uint64_t len : {uint64_t{1} << 20, ~uint64_t{0} - 4}) {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(len >> (8 * i));
    write_file(path, bytes + "{}");
    EXPECT_NE(error_of([&] { SafeTensorsFile::open(path); }), "");
  }
}

// ---- trainer state
// -------------------------------------------------------------------------------

json good_state() {
  const json loader = {{"epoch", 0},         {"step_in_epoch", 3}, {"skipped_this_epoch", 0},
                       {"skipped_total", 0}, {"seen_total", 12},   {"global_batch", 4}};
  return {{"step", 3},
          {"optimizer_steps", 3},
          {"nonfinite_steps", 0},
          {"tokens", 100},
          {"global_batch", 4},
          {"world_size", 1},
          {"ranks", json::array({{{"loader", loader}, {"rng", "1 2 3 4 0 0"}}})}};
}

std::string state_error(const std::function<void(json&)>& edit) {
  json j = good_state();
  edit(j);
  return error_of([&] { parse_trainer_state(j.dump(), "ck/trainer_state.json"); });
}

TEST(HostileTrainerState, WhatResumeReadsIsChecked) {
  EXPECT_EQ(state_error([](json&) {}), "");
  struct Case {
    std::function<void(json&)> edit;
    const char* message;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j = json::array(); }, "not a JSON object"},
      {[](json& j) { j.erase("step"); }, "has no \"step\""},
      {[](json& j) { j["step"] = -1; }, "\"step\" must be in"},
      {[](json& j) { j["tokens"] = 1.5; }, "\"tokens\" is not an integer"},
      {[](json& j) { j["optimizer_steps"] = 18446744073709551615ULL; }, "must be in"},
      {[](json& j) { j["world_size"] = 0; }, "\"world_size\" must be in"},
      {[](json& j) { j["world_size"] = 4294967297LL; }, "\"world_size\" must be in"},
      {[](json& j) { j["world_size"] = 2; }, "array of world_size (2) entries"},
      {[](json& j) { j["global_batch"] = 0; }, "\"global_batch\" must be in"},
      {[](json& j) { j["ranks"][0]["rng"] = 5; }, "ranks[0] must be an object"},
      {[](json& j) { j["ranks"][0]["loader"]["epoch"] = -3; }, "ranks[0] "},
      {[](json& j) { j["ranks"][0]["loader"]["step_in_epoch"] = 9223372036854775807LL; },
       "overflows"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    const std::string err = state_error(cases[i].edit);
    EXPECT_THAT(err, HasSubstr(cases[i].message));
    EXPECT_THAT(err, HasSubstr("ck/trainer_state.json"));
  }
}

// ---- JSONL records
// --------------------------------------------------------------------------------

TEST(HostileDataset, DeeplyNestedOrOverflowingRecordIsASkipNotACrash) {
  ScratchDir dir;
  write_file(dir.file("d.jsonl"), testing_data::record("hi", "there") + "\n" +
                                      R"({"conversations": )" + nested(1000000) + "}\n" +
                                      R"({"c": )" + std::string(500000, '[') + "\n" +
                                      R"({"conversations": 888e8888888})" + "\n");
  const Dataset ds(dir.file("d.jsonl"), "", testing_data::minimind(), testing_data::small_format());
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_TRUE(ds.load(0).sample.has_value());
  for (size_t i : {1, 2}) {
    const SampleResult r = ds.load(i);
    EXPECT_FALSE(r.sample.has_value());
    EXPECT_THAT(r.skip_reason, HasSubstr("malformed JSON"));
    EXPECT_THAT(r.skip_reason, HasSubstr("nested more than"));
  }
  // A number beyond double: an exception the dataset did not catch (found by fuzz_jsonl_record).
  const SampleResult r = ds.load(3);
  EXPECT_FALSE(r.sample.has_value());
  EXPECT_THAT(r.skip_reason, HasSubstr("malformed JSON: parse error: number overflow parsing"));
}

TEST(HostileDataset, FifoImageIsASkipWithoutBlocking) {
  ScratchDir dir;
  const std::string fifo = dir.image("pipe.png");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  write_file(dir.file("d.jsonl"),
             testing_data::record("<image>\\nWhat is it?", "A pipe.", "\"pipe.png\"") + "\n");
  const Dataset ds(dir.file("d.jsonl"), dir.images(), testing_data::minimind(),
                   testing_data::small_format());
  expect_refused_without_blocking(
      fifo,
      [&] {
        const SampleResult r = ds.load(0);
        EXPECT_FALSE(r.sample.has_value());
        MV_FAIL(r.skip_reason);
      },
      "is a FIFO");
}

}  // namespace
}  // namespace minivlm
