// Training options (train/options.h): the data options parse, validate and reach the sample format;
// configs/pretrain.json and configs/sft.json show the stages' defaults.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/dataset.h"
#include "train/options.h"

namespace minivlm {
namespace {

using testing::HasSubstr;
using testing::ThrowsMessage;

std::vector<std::string> required(std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"--model", "m", "--data", "d.jsonl", "--images", "i", "--out", "o"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST(TrainOptions, ConfigFilesShowTheStageDefaults) {
  for (const auto& [stage, file] :
       {std::pair{Stage::pretrain, "pretrain.json"}, std::pair{Stage::sft, "sft.json"}}) {
    SCOPED_TRACE(file);
    std::ifstream in(std::string(MINIVLM_SOURCE_DIR "/configs/") + file);
    const nlohmann::json config = nlohmann::json::parse(in);
    const nlohmann::json defaults = default_options(stage).to_json();
    for (const auto& [key, value] : config.items()) {
      ASSERT_TRUE(defaults.contains(key)) << key;
      EXPECT_EQ(defaults.at(key), value) << key;
    }
    for (const char* key : {"over_long", "allow_images_outside", "system_prompt_prob",
                            "keep_empty_think", "ignore_unreferenced_images"})
      EXPECT_TRUE(config.contains(key)) << key;
  }
}

TEST(TrainOptions, DataOptionsParseAndReachTheFormat) {
  const TrainOptions o = parse_train_options(
      Stage::sft, required({"--over-long", "truncate", "--allow-images-outside", "1",
                            "--system-prompt-prob", "0.2", "--keep_empty_think", "0.25",
                            "--ignore-unreferenced-images", "1", "--seed", "7"}));
  SampleFormat f;
  set_data_options(o, true, f);
  EXPECT_TRUE(f.truncate_over_long);
  EXPECT_TRUE(f.allow_images_outside);
  EXPECT_TRUE(f.ignore_unreferenced_images);
  EXPECT_DOUBLE_EQ(f.system_prompt_prob, 0.2);
  EXPECT_DOUBLE_EQ(f.keep_empty_think, 0.25);
  EXPECT_EQ(f.seed, 7u);
  // Evaluation keeps the data rules but not the random variations.
  SampleFormat e;
  set_data_options(o, false, e);
  EXPECT_TRUE(e.truncate_over_long);
  EXPECT_TRUE(e.allow_images_outside);
  EXPECT_TRUE(e.ignore_unreferenced_images);
  EXPECT_EQ(e.system_prompt_prob, 0.0);
  EXPECT_EQ(e.keep_empty_think, 1.0);

  SampleFormat d;
  set_data_options(parse_train_options(Stage::pretrain, required()), true, d);
  EXPECT_FALSE(d.truncate_over_long);
  EXPECT_FALSE(d.allow_images_outside);
  EXPECT_FALSE(d.ignore_unreferenced_images);
  EXPECT_EQ(d.system_prompt_prob, 0.0);
  EXPECT_EQ(d.keep_empty_think, 1.0);
}

TEST(TrainOptions, BadDataOptionsAreRefusedByName) {
  const std::pair<std::vector<std::string>, const char*> cases[] = {
      {{"--over-long", "cut"}, "over_long must be skip or truncate, got 'cut'"},
      {{"--allow-images-outside", "2"}, "allow_images_outside must be 0 or 1, got 2"},
      {{"--ignore-unreferenced-images", "-1"}, "ignore_unreferenced_images must be 0 or 1"},
      {{"--system-prompt-prob", "1.5"}, "system_prompt_prob must be in [0, 1], got 1.5"},
      {{"--keep-empty-think", "-0.1"}, "keep_empty_think must be in [0, 1]"},
      {{"--allow-images-outside", "yes"}, "option --allow_images_outside expects an integer"},
  };
  for (const auto& [flags, message] : cases)
    EXPECT_THAT([&] { parse_train_options(Stage::sft, required(flags)); },
                ThrowsMessage<Error>(HasSubstr(message)))
        << flags[0];
}

}  // namespace
}  // namespace minivlm
