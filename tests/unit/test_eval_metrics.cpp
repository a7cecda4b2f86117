#include <gtest/gtest.h>

#include "infer/evaluate.h"

namespace minivlm {
namespace {

TEST(EvalMetrics, ExactMatchNormalizesCaseAndWhitespace) {
  EXPECT_EQ(normalize_answer("  A  Red\tCircle.\n"), "a red circle.");
  EXPECT_TRUE(exact_match("Top left.", "  top   LEFT. "));
  EXPECT_FALSE(exact_match("Top left", "Top left."));
  EXPECT_TRUE(exact_match("", "   "));
}

TEST(EvalMetrics, TokenF1CountsSharedWords) {
  // prediction {a, red, square.} vs reference {a, red, circle.}: 2 shared → P = R = 2/3.
  EXPECT_NEAR(token_f1("A red square.", "a red circle."), 2.0 / 3.0, 1e-12);
  // Repeated words count once per occurrence: {the, the, cat} vs {the, cat, sat}: 2 shared,
  // P = 2/3, R = 2/3.
  EXPECT_NEAR(token_f1("the the cat", "the cat sat"), 2.0 / 3.0, 1e-12);
  // P = 1/1, R = 1/4 → F1 = 2·0.25 / 1.25 = 0.4.
  EXPECT_NEAR(token_f1("blue", "it is light blue"), 0.4, 1e-12);
  EXPECT_EQ(token_f1("red", "green"), 0.0);
  EXPECT_EQ(token_f1("", ""), 1.0);
  EXPECT_EQ(token_f1("", "red"), 0.0);
}

}  // namespace
}  // namespace minivlm
