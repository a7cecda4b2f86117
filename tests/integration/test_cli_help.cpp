// Every program answers --help with its options and exit status 0, before checking anything else.
#include <gtest/gtest.h>

#include "cli_util.h"

namespace minivlm {
namespace {

using testing::kBin;
using testing::run;

TEST(CliHelp, EveryProgramListsItsOptions) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"infer --help", "--decode-dtype"},         {"eval -h", "--generate"},
      {"train_sft --help", "--grad_accum"},       {"train_pretrain --help", "--max_steps"},
      {"minivlm tokenize --help", "--tokenizer"}, {"minivlm forward --help", "--chat"},
      {"minivlm bench-model --help", "--tiles"},  {"eval -h", "--decode-dtype"},
  };
  for (const auto& [cmd, option] : cases) {
    const auto r = run(kBin + "/" + cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find(option), std::string::npos) << cmd << "\n" << r.output;
    EXPECT_EQ(r.output.find("error"), std::string::npos) << cmd << "\n" << r.output;
  }
}

TEST(CliHelp, AnUnknownOptionIsStillAnError) {
  const auto r = run(kBin + "/infer --hlep");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown option --hlep"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace minivlm
