// The synthetic shapes dataset: determinism, the JSONL schema (SPEC §4.1), decodable images,
// held-out eval images, answers recomputed from each scene, pixels that show the described shapes,
// and an eval set a model cannot pass without looking at the image.
#include "data/synthetic.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "data/image.h"
#include "text/chat.h"

namespace minivlm::synthetic {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  EXPECT_TRUE(f.good()) << p;
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> out;
  std::istringstream in(read_file(p));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    EXPECT_NO_THROW(out.push_back(json::parse(line))) << p << ":" << n << ": " << line;
  }
  return out;
}

fs::path fresh_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(::testing::TempDir()) /
                 ("minivlm_syn_" + std::to_string(::getpid()) + "_" + info->name() + "_" + tag);
  fs::remove_all(dir);
  return dir;
}

fs::path make(const Options& o, const std::string& tag) {
  const fs::path dir = fresh_dir(tag);
  write_dataset(build_dataset(o), o, dir.string());
  return dir;
}

Options small(uint64_t seed = 42) {
  Options o;
  o.seed = seed;
  o.train_images = 120;
  o.eval_images = 80;
  return o;
}

std::map<std::string, std::string> all_files(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = read_file(e.path());
  return out;
}

// ---- the test's own reading of a scene (from scenes.jsonl) -----------------------------------

struct TShape {
  std::string kind, color, region;
  int cx, cy, radius;
};
struct TScene {
  std::string split;
  int size;
  std::array<int, 3> background;
  std::vector<TShape> shapes;
};

std::map<std::string, TScene> read_scenes(const fs::path& dir) {
  std::map<std::string, TScene> out;
  for (const json& j : read_jsonl(dir / "scenes.jsonl")) {
    TScene s{j["split"], j["size"], j["background"], {}};
    for (const json& sh : j["shapes"])
      s.shapes.push_back(
          {sh["kind"], sh["color"], sh["region"], sh["center"][0], sh["center"][1], sh["radius"]});
    out[j["image"]] = s;
  }
  return out;
}

std::string cap(std::string s) {
  s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

const char* kNumbers[] = {"Zero", "One", "Two", "Three", "Four"};
const std::vector<std::string> kKinds = {"circle", "square", "triangle", "cross"};

// The only shape of a kind named in the question ("" when the question names none).
const TShape* named_shape(const TScene& s, const std::string& q) {
  for (const auto& k : kKinds)
    if (q.find(k) != std::string::npos) {
      const TShape* found = nullptr;
      for (const auto& sh : s.shapes)
        if (sh.kind == k) {
          EXPECT_EQ(found, nullptr) << "two " << k << "s in one scene";
          found = &sh;
        }
      EXPECT_NE(found, nullptr) << "question '" << q << "' names a shape the image lacks";
      return found;
    }
  return nullptr;
}

enum class QType { color, kind, position, count };

QType classify(const std::string& q) {
  if (q.find("color") != std::string::npos) return QType::color;
  if (q.find("How many") != std::string::npos || q.find("Count") != std::string::npos)
    return QType::count;
  if (q.find("Where") != std::string::npos || q.find("which part") != std::string::npos)
    return QType::position;
  EXPECT_NE(q.find("shape"), std::string::npos) << "unknown question: " << q;
  return QType::kind;
}

// The answer a reader of the scene gives, worked out here from the scene description alone.
std::string expected_answer(const TScene& s, const std::string& q) {
  const TShape* named = named_shape(s, q);
  if (named == nullptr && classify(q) != QType::count) {
    EXPECT_EQ(s.shapes.size(), 1u) << "'" << q << "' about an image with several shapes";
  }
  const TShape& target = named ? *named : s.shapes.at(0);
  switch (classify(q)) {
    case QType::color:
      return cap(target.color) + ".";
    case QType::kind:
      return "A " + target.kind + ".";
    case QType::position:
      return cap(target.region) + ".";
    case QType::count:
      return std::string(kNumbers[s.shapes.size()]) + ".";
  }
  return "";
}

std::string expected_caption(const TScene& s) {
  auto part = [](const TShape& sh) {
    const bool vowel = std::string("aeiou").find(sh.color[0]) != std::string::npos;
    return (vowel ? "an " : "a ") + sh.color + " " + sh.kind + " " +
           (sh.region == "center" ? "in the center" : "at the " + sh.region);
  };
  if (s.shapes.size() == 1) return cap(part(s.shapes[0])) + ".";
  std::string c = std::string(kNumbers[s.shapes.size()]) + " shapes: ";
  for (size_t i = 0; i < s.shapes.size(); ++i)
    c += (i == 0 ? "" : i + 1 == s.shapes.size() ? " and " : ", ") + part(s.shapes[i]);
  return c + ".";
}

// A color name for an RGB pixel by coarse hue rules, independent of the generator's palette.
std::string hue_name(int r, int g, int b) {
  if (r > 200 && g > 170 && b < 90) return "yellow";
  if (r > 200 && g > 90 && g < 170 && b < 90) return "orange";
  if (r > 180 && g < 80 && b < 80) return "red";
  if (g > r + 60 && g > b + 60) return "green";
  if (b > r + 100 && b > g + 100) return "blue";
  if (r > 100 && b > 150 && g < 100) return "purple";
  return "?";
}

// ---- tests -----------------------------------------------------------------------------------

TEST(Synthetic, SameSeedSameBytesOtherSeedOtherData) {
  const auto a = all_files(make(small(7), "a"));
  const auto b = all_files(make(small(7), "b"));
  const auto c = all_files(make(small(8), "c"));
  ASSERT_EQ(a.size(), 120u + 80u + 5u);  // images + 4 JSONL + meta.json
  EXPECT_TRUE(a == b);
  EXPECT_NE(a.at("eval.jsonl"), c.at("eval.jsonl"));
  EXPECT_NE(a.at("sft.jsonl"), c.at("sft.jsonl"));
  int same_images = 0;
  for (const auto& [name, bytes] : a)
    if (name.rfind("images/", 0) == 0 && c.at(name) == bytes) ++same_images;
  EXPECT_EQ(same_images, 0);
  // Image i does not depend on how many images are made.
  Options fewer = small(7);
  fewer.train_images = 10;
  fewer.eval_images = 3;
  const auto f = all_files(make(fewer, "f"));
  EXPECT_EQ(f.at("images/train_00010.png"), a.at("images/train_00010.png"));
  EXPECT_EQ(f.at("images/eval_00003.png"), a.at("images/eval_00003.png"));
}

TEST(Synthetic, JsonlFollowsTheSampleSchema) {
  const fs::path dir = make(small(), "d");
  std::map<std::string, int> counts;
  std::set<std::string> prompts;
  for (const char* file : {"pretrain.jsonl", "sft.jsonl", "eval.jsonl"}) {
    const auto lines = read_jsonl(dir / file);
    ASSERT_FALSE(lines.empty()) << file;
    for (const json& j : lines) {
      SCOPED_TRACE(std::string(file) + ": " + j.dump());
      ASSERT_TRUE(j.is_object());
      for (const auto& [k, v] : j.items()) EXPECT_TRUE(k == "conversations" || k == "image") << k;
      const json& conv = j.at("conversations");
      ASSERT_TRUE(conv.is_array());
      std::vector<Message> msgs;
      for (const json& m : conv) {
        ASSERT_EQ(m.size(), 2u);
        msgs.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
      }
      // Optional system first, then user/assistant pairs ending with the assistant.
      const size_t first = msgs.at(0).role == "system" ? 1 : 0;
      ASSERT_EQ((msgs.size() - first) % 2, 0u);
      ASSERT_GT(msgs.size(), first);
      for (size_t i = first; i < msgs.size(); ++i) {
        EXPECT_EQ(msgs[i].role, (i - first) % 2 == 0 ? "user" : "assistant");
        EXPECT_FALSE(msgs[i].content.empty());
        EXPECT_EQ(msgs[i].content.find("<image>", i == first ? 1 : 0), std::string::npos);
      }
      const bool has_image = j.contains("image");
      EXPECT_EQ(msgs[first].content.rfind("<image>\n", 0) == 0, has_image);
      if (has_image) {
        EXPECT_TRUE(fs::is_regular_file(dir / "images" / j["image"].get<std::string>()));
        if (std::string(file) == "pretrain.jsonl") prompts.insert(msgs[first].content);
      }
      const std::vector<ImagePrompt> images(has_image ? 1 : 0, image_run("<|image_pad|>", 1));
      EXPECT_NO_THROW(render_chat(msgs, images, false, ChatTemplate::chatml));
      ++counts[std::string(file) + (has_image ? "" : " text-only")];
      if (first == 1) ++counts[std::string(file) + " system"];
      if (msgs.size() - first > 2) ++counts[std::string(file) + " multi-turn"];
    }
  }
  EXPECT_GE(prompts.size(), 4u);  // varied caption prompts
  EXPECT_EQ(counts["pretrain.jsonl"], 120);
  EXPECT_EQ(counts["eval.jsonl"], 80);
  EXPECT_EQ(counts["pretrain.jsonl text-only"] + counts["eval.jsonl text-only"], 0);
  EXPECT_EQ(counts["eval.jsonl system"] + counts["eval.jsonl multi-turn"], 0);
  EXPECT_GT(counts["sft.jsonl text-only"], 5);
  EXPECT_GT(counts["sft.jsonl system"], 5);
  EXPECT_GT(counts["sft.jsonl multi-turn"], 30);

  const json meta = json::parse(read_file(dir / "meta.json"));
  EXPECT_EQ(meta["seed"], 42);
  EXPECT_EQ(meta["image_size"], 64);
  EXPECT_EQ(meta["train_images"], 120);
  EXPECT_EQ(meta["eval_images"], 80);
  EXPECT_EQ(meta["pretrain_samples"], 120);
  EXPECT_EQ(meta["eval_samples"], 80);
  EXPECT_EQ(meta["sft_samples"], read_jsonl(dir / "sft.jsonl").size());
}

TEST(Synthetic, ImagesDecodeAtTheRequestedSize) {
  for (int size : {32, 64, 96}) {
    Options o = small();
    o.image_size = size;
    o.train_images = 12;
    o.eval_images = 4;
    const fs::path dir = make(o, std::to_string(size));
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir / "images")) {
      const RgbImage img = load_rgb_image(e.path().string());
      EXPECT_EQ(img.width, size) << e.path();
      EXPECT_EQ(img.height, size) << e.path();
      ++n;
    }
    EXPECT_EQ(n, 16);
  }
}

TEST(Synthetic, EvalImagesAreNeverTrainedOn) {
  const fs::path dir = make(small(), "d");
  std::set<std::string> train_refs, eval_refs, train_bytes;
  for (const char* file : {"pretrain.jsonl", "sft.jsonl"})
    for (const json& j : read_jsonl(dir / file))
      if (j.contains("image")) train_refs.insert(j["image"].get<std::string>());
  for (const json& j : read_jsonl(dir / "eval.jsonl"))
    eval_refs.insert(j["image"].get<std::string>());
  EXPECT_EQ(train_refs.size(), 120u);
  EXPECT_EQ(eval_refs.size(), 80u);
  for (const auto& name : eval_refs) {
    EXPECT_EQ(train_refs.count(name), 0u) << name;
    EXPECT_EQ(name.rfind("eval_", 0), 0u) << name;
  }
  for (const auto& name : train_refs) train_bytes.insert(read_file(dir / "images" / name));
  for (const auto& name : eval_refs)
    EXPECT_EQ(train_bytes.count(read_file(dir / "images" / name)), 0u) << name;
}

TEST(Synthetic, AnswersAndCaptionsFollowFromTheScene) {
  const fs::path dir = make(small(), "d");
  const auto scenes = read_scenes(dir);
  ASSERT_EQ(scenes.size(), 200u);
  int checked = 0;
  for (const char* file : {"sft.jsonl", "eval.jsonl", "pretrain.jsonl"}) {
    for (const json& j : read_jsonl(dir / file)) {
      if (!j.contains("image")) continue;
      const TScene& s = scenes.at(j["image"]);
      EXPECT_EQ(s.split, std::string(file) == "eval.jsonl" ? "eval" : "train");
      const json& conv = j["conversations"];
      for (size_t i = conv[0]["role"] == "system" ? 1 : 0; i + 1 < conv.size(); i += 2) {
        std::string q = conv[i]["content"];
        if (q.rfind("<image>\n", 0) == 0) q = q.substr(8);
        const std::string a = conv[i + 1]["content"];
        SCOPED_TRACE(std::string(file) + ": " + j["image"].get<std::string>() + ": " + q);
        EXPECT_EQ(
            a, std::string(file) == "pretrain.jsonl" ? expected_caption(s) : expected_answer(s, q));
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 500);
}

TEST(Synthetic, PixelsShowTheDescribedShapes) {
  const fs::path dir = make(small(), "d");
  int shapes = 0;
  for (const auto& [name, s] : read_scenes(dir)) {
    SCOPED_TRACE(name);
    const RgbImage img = load_rgb_image((dir / "images" / name).string());
    auto px = [&](int x, int y) {
      return &img.pixels[3 * (static_cast<size_t>(y) * img.width + x)];
    };
    std::vector<bool> in_box(static_cast<size_t>(s.size) * s.size, false);
    for (const TShape& sh : s.shapes) {
      const uint8_t* c = px(sh.cx, sh.cy);
      EXPECT_EQ(hue_name(c[0], c[1], c[2]), sh.color)
          << "center pixel " << int(c[0]) << "," << int(c[1]) << "," << int(c[2]);
      // The shape is painted flat: a large share of its box has exactly the center's color.
      int same = 0;
      for (int y = sh.cy - sh.radius; y <= sh.cy + sh.radius; ++y)
        for (int x = sh.cx - sh.radius; x <= sh.cx + sh.radius; ++x) {
          ASSERT_TRUE(x >= 0 && y >= 0 && x < s.size && y < s.size) << "shape leaves the image";
          EXPECT_FALSE(in_box[static_cast<size_t>(y) * s.size + x]) << "shapes overlap";
          in_box[static_cast<size_t>(y) * s.size + x] = true;
          const uint8_t* p = px(x, y);
          same += p[0] == c[0] && p[1] == c[1] && p[2] == c[2];
        }
      EXPECT_GE(same, sh.radius * sh.radius) << sh.kind;
      ++shapes;
    }
    // Everything else is background with at most ±4 of noise.
    for (int y = 0; y < s.size; ++y)
      for (int x = 0; x < s.size; ++x)
        if (!in_box[static_cast<size_t>(y) * s.size + x]) {
          for (int ch = 0; ch < 3; ++ch)
            ASSERT_LE(std::abs(px(x, y)[ch] - s.background[ch]), 4) << x << "," << y;
        }
  }
  EXPECT_GT(shapes, 300);
}

TEST(Synthetic, EvalAnswersAreBalancedSoImageBlindGuessingFails) {
  Options o = small();
  o.eval_images = 400;
  const fs::path dir = make(o, "d");
  // Per question type, every answer occurs equally often (up to one).
  std::map<QType, std::map<std::string, int>> by_type;
  std::map<std::string, std::map<std::string, int>> eval_by_question, train_by_question;
  for (const json& j : read_jsonl(dir / "eval.jsonl")) {
    const std::string q = j["conversations"][0]["content"], a = j["conversations"][1]["content"];
    ++by_type[classify(q)][a];
    ++eval_by_question[q][a];
  }
  const std::map<QType, size_t> values = {
      {QType::color, 6}, {QType::kind, 4}, {QType::position, 5}, {QType::count, 4}};
  for (const auto& [type, answers] : by_type) {
    EXPECT_EQ(answers.size(), values.at(type));
    int lo = 1 << 30, hi = 0;
    for (const auto& [a, n] : answers) lo = std::min(lo, n), hi = std::max(hi, n);
    EXPECT_LE(hi - lo, 1);
  }
  // The best image-blind model: the most frequent training answer for each question text.
  for (const json& j : read_jsonl(dir / "sft.jsonl")) {
    const json& conv = j["conversations"];
    for (size_t i = conv[0]["role"] == "system" ? 1 : 0; i + 1 < conv.size(); i += 2)
      ++train_by_question[conv[i]["content"]][conv[i + 1]["content"]];
  }
  int blind_right = 0, total = 0;
  for (const auto& [q, answers] : eval_by_question) {
    std::string guess;
    int best = -1;
    for (const auto& [a, n] : train_by_question[q])
      if (n > best) best = n, guess = a;
    for (const auto& [a, n] : answers) {
      total += n;
      if (a == guess) blind_right += n;
    }
  }
  EXPECT_EQ(total, 400);
  // Chance is (1/6 + 1/4 + 1/5 + 1/4) / 4 ≈ 0.22.
  EXPECT_LT(static_cast<double>(blind_right) / total, 0.27) << blind_right << " of " << total;
}

TEST(Synthetic, RejectsSizesOutOfRange) {
  for (auto [size, train, eval] :
       {std::tuple{16, 10, 10}, {2048, 10, 10}, {64, 0, 10}, {64, 10, -1}, {64, 100000, 0}}) {
    Options o;
    o.image_size = size;
    o.train_images = train;
    o.eval_images = eval;
    EXPECT_THROW(build_dataset(o), minivlm::Error) << size << " " << train << " " << eval;
  }
}

TEST(Synthetic, MakeDatasetCommandWritesTheSameDataset) {
  const std::string bin = MINIVLM_BIN_DIR "/minivlm";
  ASSERT_TRUE(fs::exists(bin)) << bin << " is missing: build the minivlm target";
  const fs::path dir = fresh_dir("cli");
  const std::string log = dir.string() + ".log";
  const std::string cmd = bin + " make-dataset --out " + dir.string() +
                          " --seed 5 --image-size 48 --train-images 20 --eval-images 8 > " + log +
                          " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(log);
  Options o;
  o.seed = 5;
  o.image_size = 48;
  o.train_images = 20;
  o.eval_images = 8;
  EXPECT_TRUE(all_files(dir) == all_files(make(o, "lib")));
  EXPECT_NE(read_file(log).find("20 train + 8 eval images"), std::string::npos) << read_file(log);

  const std::string bad =
      bin + " make-dataset --out " + dir.string() + " --colour red > " + log + " 2>&1";
  EXPECT_NE(std::system(bad.c_str()), 0);
  EXPECT_NE(read_file(log).find("unknown option --colour"), std::string::npos) << read_file(log);
  EXPECT_NE(read_file(log).find("--train-images"), std::string::npos) << read_file(log);
}

}  // namespace
}  // namespace minivlm::synthetic
