// minivlm bench-tokenizer --tokenizer FILE --file TEXT [--runs N]: encoding speed on a text file,
// each line (with its newline) encoded as one string, single thread. Prints the first run (cold
// piece cache) and the median of the runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_check.h"
#include "text/tokenizer.h"
#include "tools/command.h"

namespace minivlm {

MINIVLM_COMMAND("bench-tokenizer", "tokenizer encoding speed (MB/s, tokens/s) on a text file") {
  cli::Args a(args, {{"tokenizer", true}, {"file", true}, {"runs", true}}, "bench-tokenizer");
  const int runs = a.get_int("runs", 5);
  MV_CHECK(runs > 0, "bench-tokenizer: --runs must be positive, got ", runs);
  const Tokenizer tok = Tokenizer::from_file(a.get("tokenizer"));
  require_regular_file(a.get("file"), "text file");
  std::ifstream in(a.get("file"), std::ios::binary);
  MV_CHECK(in, "bench-tokenizer: cannot open ", a.get("file"));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::string_view> lines;
  for (size_t from = 0; from < text.size();) {
    const size_t nl = text.find('\n', from);
    const size_t end = nl == std::string::npos ? text.size() : nl + 1;
    lines.push_back(std::string_view(text).substr(from, end - from));
    from = end;
  }

  std::vector<double> seconds;
  size_t tokens = 0;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    tokens = 0;
    for (std::string_view line : lines) tokens += tok.encode(line).size();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double first = seconds[0];
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("%.2f MB, %zu lines, %zu tokens\n", mb, lines.size(), tokens);
  std::printf("first run:        %8.2f MB/s %12.0f tokens/s\n", mb / first,
              static_cast<double>(tokens) / first);
  std::printf("median of %d:      %8.2f MB/s %12.0f tokens/s\n", runs, mb / median,
              static_cast<double>(tokens) / median);
  return 0;
}

}  // namespace minivlm
