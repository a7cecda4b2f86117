// `minivlm check-data` names the bad lines of a damaged dataset with their reasons and exits
// non-zero when more than --max-bad-fraction of its samples are bad.
#include <gtest/gtest.h>

#include "cli_util.h"
#include "data/image.h"

namespace minivlm {
namespace {

using testing::fresh_dir;
using testing::kBin;
using testing::kSource;
using testing::run;

void write(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

std::string rec(const std::string& user, const std::string& answer, const std::string& image = "") {
  std::string r = R"({"conversations": [{"role": "user", "content": ")" + user +
                  R"("}, {"role": "assistant", "content": ")" + answer + R"("}])";
  if (!image.empty()) r += R"(, "image": ")" + image + "\"";
  return r + "}\n";
}

TEST(CheckDataCli, NamesTheBadLinesOfADamagedDataset) {
  const std::string d = fresh_dir("check_data");
  const std::string model = d + "/model";
  auto r = run(kBin + "/minivlm init-model --config " + kSource +
               "/tests/fixtures/test-model.json --tokenizer " + testing::chatml_tokenizer() +
               " --out " + model + " --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::filesystem::create_directories(d + "/images");
  RgbImage img;
  img.width = img.height = 32;
  img.pixels.assign(32 * 32 * 3, 128);
  write(d + "/images/a.png", encode_png(img));
  std::string long_answer;
  for (int i = 0; i < 200; ++i) long_answer += "word ";
  const std::string data = d + "/damaged.jsonl";
  write(data, rec("<image>What?", "Gray.", "a.png") +  // 1
                  "{\"conversations\": [\n" +          // 2
                  rec("Hi", "Yo", "missing.png") +     // 3
                  rec("Talk.", long_answer) +          // 4
                  R"({"conversations": [{"role": "robot", "content": "Hi"}]})"
                  "\n" +                // 5
                  rec("Hi", "Hello"));  // 6
  const std::string cmd = kBin + "/minivlm check-data --data " + data + " --images " + d +
                          "/images --model " + model + " --max-seq-len 128 --workers 2";
  r = run(cmd);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  for (const std::string& want : std::vector<std::string>{
           data + ":2: malformed JSON: ", data + ":3: missing image " + d + "/images/missing.png",
           data + ":4: over-long: ", " tokens exceed max_seq_len 128",
           data + ":5: unknown role 'robot' in conversations[0]", "samples: 6\n",
           "usable samples: 2 (33.33%)\n", "bad samples: 4 (66.67%)\n", "tokens per sample (",
           "images per usable sample: 0: 1, 1: 1\n", "over max_seq_len 128: 1\n",
           "4 of 6 samples are bad, more than max_bad_fraction 0.01"})
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;

  r = run(cmd + " --max-bad-fraction 0.7");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run(cmd + " --over-long truncate --max-bad-fraction 0.5");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("usable samples: 3 (50.00%), 1 of them cut at max_seq_len"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace minivlm
