// The `minivlm tokenize` and `minivlm render` subcommands, run as processes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <unistd.h>

namespace {

using nlohmann::json;

const std::string kMiniMind = MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer.json";
const std::string kTool = MINIVLM_BIN_DIR "/minivlm";

struct Result {
  int status;
  std::string out;
};

Result run(const std::string& command) {
  Result r{-1, ""};
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) r.out.append(buf.data(), n);
  r.status = pclose(p);
  return r;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

// The MiniMind tokenizer.json alone, without the tokenizer_config.json beside it in data/tokenizer:
// its chats are ChatML (SPEC §3), the format of the ids these tests expect.
const std::string& chatml_tokenizer() {
  static const std::string path = [] {
    const std::filesystem::path d = std::filesystem::temp_directory_path() /
                                    ("minivlm_chatml_tokenizer_" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    std::filesystem::copy_file(kMiniMind, d / "tokenizer.json",
                               std::filesystem::copy_options::overwrite_existing);
    return (d / "tokenizer.json").string();
  }();
  return path;
}

std::vector<json> lines(const std::string& out) {
  std::vector<json> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
  return rows;
}

TEST(TokenizerCli, TokenizeMatchesGoldens) {
  std::ifstream golden(MINIVLM_SOURCE_DIR "/tests/goldens/tokenizer/minimind.jsonl");
  std::string input;
  std::vector<json> want;
  for (std::string line; want.size() < 200 && std::getline(golden, line);) {
    const json row = json::parse(line);
    input += json(row["text"]).dump() + "\n";
    want.push_back(row["ids"]);
  }
  const std::string in = write_temp("minivlm_tokenize_in.txt", input);
  const Result r = run(kTool + " tokenize --tokenizer " + kMiniMind + " < " + in);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(lines(r.out), want);
}

TEST(TokenizerCli, RenderCountsImagesInEveryForm) {
  const std::string conv =
      R"("conversations": [{"role": "user", "content": "What is in the picture?"},)"
      R"( {"role": "assistant", "content": "A red circle."}])";
  const std::string data =
      write_temp("minivlm_render.jsonl",
                 "{" + conv + R"(, "image": "a.png"})" + "\n" +  //
                     "{" + conv + R"(, "image": "a.png, b.png"})" + "\n" + "{" + conv +
                     R"(, "image": ["a.png", "b.png"]})" + "\n" + "{" + conv + "}\n");
  const Result r = run(kTool + " render --tokenizer " + chatml_tokenizer() +
                       " --tokens-per-image 3 --data " + data);
  ASSERT_EQ(r.status, 0) << r.out;
  const std::vector<json> rows = lines(r.out);
  ASSERT_EQ(rows.size(), 4u);
  // Golden 2 of chat.jsonl: this conversation with one image of 3 tokens.
  const std::vector<int32_t> one_image = {1,   832, 311, 234,  12,   12,   12, 234, 1146, 395,
                                          353, 309, 344, 2030, 745,  66,   2,  234, 1,    1388,
                                          570, 811, 234, 68,   5534, 5255, 49, 2,   234};
  EXPECT_EQ(rows[0]["ids"].get<std::vector<int32_t>>(), one_image);
  const std::vector<int> labels = rows[0]["labels"];
  EXPECT_EQ(std::vector<int>(labels.begin(), labels.begin() + 23), std::vector<int>(23, 0));
  EXPECT_EQ(std::vector<int>(labels.begin() + 23, labels.end()), std::vector<int>(6, 1));
  for (size_t k : {1, 2}) {
    const std::vector<int32_t> ids = rows[k]["ids"];
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 12), 6) << k;
    EXPECT_EQ(rows[k], rows[1]);
  }
  const std::vector<int32_t> text_only = rows[3]["ids"];
  EXPECT_EQ(std::count(text_only.begin(), text_only.end(), 12), 0);
  EXPECT_EQ(text_only.size(), one_image.size() - 4);  // no image run, no "\n" after it
}

// data/tokenizer/tokenizer.json has MiniMind-3's chat template beside it: render formats with it,
// as transformers does (golden 5 of chat_minimind3.jsonl), and supervises the think block.
TEST(TokenizerCli, RenderUsesTheChatTemplateBesideTheTokenizer) {
  std::ifstream golden(MINIVLM_SOURCE_DIR "/tests/goldens/tokenizer/chat_minimind3.jsonl");
  json want;
  for (std::string line; std::getline(golden, line);) {
    want = json::parse(line);
    if (want["images"] == 1 && !want["generation_prompt"].get<bool>()) break;
  }
  ASSERT_EQ(want["tokens_per_image"], 4) << want.dump();
  const std::string data =
      write_temp("minivlm_render_minimind3.jsonl",
                 json{{"conversations", want["messages"]}, {"image", "a.png"}}.dump() + "\n");
  const Result r =
      run(kTool + " render --tokenizer " + kMiniMind + " --tokens-per-image 4 --data " + data);
  ASSERT_EQ(r.status, 0) << r.out;
  const std::vector<json> rows = lines(r.out);
  ASSERT_EQ(rows.size(), 1u);
  const std::vector<int32_t> ids = rows[0]["ids"];
  EXPECT_EQ(ids, want["ids"].get<std::vector<int32_t>>());
  // Supervised: "<think>\n\n</think>\n\n" [25, 234, 234, 26, 234, 234], the reply, "<|im_end|>\n".
  const std::vector<int> labels = rows[0]["labels"];
  const size_t think = std::find(ids.begin(), ids.end(), 25) - ids.begin();
  ASSERT_LT(think, ids.size());
  EXPECT_EQ(std::vector<int>(labels.begin(), labels.begin() + think), std::vector<int>(think, 0));
  EXPECT_EQ(std::vector<int>(labels.begin() + think, labels.end()),
            std::vector<int>(ids.size() - think, 1));
}

TEST(TokenizerCli, RenderNamesTheBadLine) {
  const std::string data = write_temp("minivlm_render_bad.jsonl",
                                      R"({"conversations": [{"role": "user", "content": "hi"}]})"
                                      "\n"
                                      R"({"conversations": [{"role": "robot", "content": "hi"}]})"
                                      "\n");
  const Result r = run(kTool + " render --tokenizer " + chatml_tokenizer() + " --data " + data);
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.out, testing::HasSubstr("minivlm_render_bad.jsonl:2"));
  EXPECT_THAT(r.out, testing::HasSubstr("unknown role 'robot'"));
}

}  // namespace
