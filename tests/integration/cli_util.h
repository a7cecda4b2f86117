// Helpers for end-to-end tests: run the project's binaries, make a dataset and a model once.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace minivlm::testing {

inline const std::string kBin = MINIVLM_BIN_DIR;
inline const std::string kSource = MINIVLM_SOURCE_DIR;
inline const std::string kTokenizer = kSource + "/data/tokenizer/tokenizer.json";

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs a shell command, capturing stdout and stderr together.
inline RunResult run(const std::string& cmd) {
  RunResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A fresh directory under the test temp dir, private to this process (ctest runs the tests of one
// binary as parallel processes).
inline std::string fresh_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "minivlm_" + std::to_string(getpid()) + "_" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// data/tokenizer/tokenizer.json alone, without the tokenizer_config.json beside it: a model
// directory made from it renders chats in ChatML (SPEC §3), the format that the golden files of
// these tests (scripts/reference/eval_ref.py) were made in, not in MiniMind-3's chat template.
inline const std::string& chatml_tokenizer() {
  static const std::string path = [] {
    const std::string d = fresh_dir("chatml_tokenizer");
    std::filesystem::copy_file(kTokenizer, d + "/tokenizer.json");
    return d + "/tokenizer.json";
  }();
  return path;
}

// A small synthetic dataset and an untrained small model (ChatML), made once per test binary.
struct Workspace {
  std::string dir, data, images, model;
};

inline const Workspace& workspace() {
  static const Workspace w = [] {
    Workspace w;
    w.dir = fresh_dir("workspace");
    w.data = w.dir + "/data";
    w.images = w.data + "/images";
    w.model = w.dir + "/model";
    RunResult r = run(kBin + "/minivlm make-dataset --out " + w.data +
                      " --seed 5 --image-size 32 --train-images 40 --eval-images 12");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    r = run(kBin + "/minivlm init-model --config " + kSource +
            "/tests/fixtures/test-model.json --tokenizer " + chatml_tokenizer() + " --out " +
            w.model + " --seed 3");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return w;
  }();
  return w;
}

// max |got − want| / max |want|: a tensor's error relative to its scale.
inline double max_rel(const std::vector<double>& got, const std::vector<double>& want) {
  double scale = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    err = std::max(err, std::abs(got[i] - want[i]));
  }
  return err / scale;
}

// A JSON list of command-line words (a golden case's recorded arguments) as " a b c".
inline std::string args_of(const nlohmann::json& list) {
  std::string s;
  for (const auto& a : list) s += " " + a.get<std::string>();
  return s;
}

// A trainer binary (`bin`: train_sft, train_pretrain) on the workspace's `data_file` and images,
// with the options the end-to-end training tests share (batch 4, lr 2e-3, a metrics line every
// step); `extra` adds more.
inline std::string train_command(const std::string& bin, const std::string& model,
                                 const std::string& data_file, const std::string& out,
                                 const std::string& extra) {
  const Workspace& w = workspace();
  return kBin + "/" + bin + " --model " + model + " --data " + w.data + "/" + data_file +
         " --images " + w.images + " --out " + out +
         " --batch-size 4 --lr 2e-3 --log-every 1 --max-seq-len 256 " + extra;
}

// The training lines (those with a loss) of a run's metrics.jsonl, in order.
inline std::vector<nlohmann::json> train_lines(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(run_dir + "/metrics.jsonl"));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(std::move(j));
  }
  return out;
}

inline std::vector<double> losses(const std::string& run_dir) {
  std::vector<double> out;
  for (const nlohmann::json& j : train_lines(run_dir)) out.push_back(j["loss"].get<double>());
  return out;
}

}  // namespace minivlm::testing
