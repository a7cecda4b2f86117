#include "data/synthetic.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "data/image.h"

namespace minivlm::synthetic {

namespace {

// Scene randomness: the project's portable xoshiro256** (core/rng.h) with a multiply-shift bounded
// draw, so a seed gives the same dataset on every platform and standard library.
uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class SceneRng {
 public:
  explicit SceneRng(uint64_t seed) : rng_(seed) {}
  // An independent stream for item `index` of stream `tag`: item i is the same whatever the counts.
  static SceneRng stream(uint64_t seed, uint64_t tag, uint64_t index) {
    return SceneRng(mix64(mix64(mix64(seed) ^ tag) ^ index));
  }
  uint64_t next() { return rng_.next_u64(); }
  int below(int n) {  // uniform in [0, n)
    return static_cast<int>((static_cast<unsigned __int128>(next()) * static_cast<uint64_t>(n)) >>
                            64);
  }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(below(static_cast<int>(v.size())))];
  }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i)
      std::swap(v[i - 1], v[static_cast<size_t>(below(static_cast<int>(i)))]);
  }

 private:
  Rng rng_;
};

enum Stream : uint64_t { kTrainStream = 1, kEvalStream = 2 };

constexpr const char* kKindNames[] = {"circle", "square", "triangle", "cross"};
constexpr const char* kColorNames[] = {"red", "green", "blue", "yellow", "purple", "orange"};
constexpr const char* kRegionNames[] = {"top left", "top right", "bottom left", "bottom right",
                                        "center"};
constexpr std::array<uint8_t, 3> kColorRgb[] = {{220, 30, 30},  {30, 160, 50},  {30, 70, 220},
                                                {240, 200, 20}, {140, 50, 190}, {245, 130, 20}};
// Light backgrounds, far from every shape color.
constexpr std::array<uint8_t, 3> kBackgrounds[] = {
    {250, 250, 250}, {225, 225, 225}, {245, 238, 220}, {220, 230, 240}};
constexpr const char* kNumberWords[] = {"Zero", "One", "Two", "Three", "Four"};

std::string capitalized(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

// ---- scenes ----------------------------------------------------------------------------------

// What a scene must show; -1 / 0 leave the attribute to chance. Eval images fix the asked one.
struct SceneSpec {
  int count = 0;
  int kind = -1, color = -1, region = -1;
};

// 40% single shapes (the color, shape and position questions need them), 20% each of 2, 3, 4.
int draw_count(SceneRng& rng) {
  const int u = rng.below(10);
  return u < 4 ? 1 : u < 6 ? 2 : u < 8 ? 3 : 4;
}

Scene make_scene(SceneRng& rng, int size, const SceneSpec& spec) {
  Scene scene;
  scene.size = size;
  scene.background = kBackgrounds[rng.below(4)];
  scene.noise_seed = rng.next();
  const int n = spec.count > 0 ? spec.count : draw_count(rng);
  std::vector<int> regions, kinds;
  if (n == 1) {
    regions = {spec.region >= 0 ? spec.region : rng.below(kNumRegions)};
    kinds = {spec.kind >= 0 ? spec.kind : rng.below(kNumKinds)};
  } else {
    regions = {0, 1, 2, 3};  // quadrants only, so shapes never touch
    kinds = {0, 1, 2, 3};    // distinct, so "the square" names one shape
    rng.shuffle(regions);
    rng.shuffle(kinds);
    regions.resize(static_cast<size_t>(n));
    kinds.resize(static_cast<size_t>(n));
  }
  // Sizes scale with the image: radius 8..11 and jitter ±3 at 64 px keep a shape inside its
  // quadrant (16 − 3 − 11 ≥ 0 and 16 + 3 + 11 < 32).
  const double s = size / 64.0;
  const int jitter = static_cast<int>(std::floor(3 * s));
  const int q = size / 4, q3 = 3 * size / 4, c = size / 2;
  const int centers[kNumRegions][2] = {{q, q}, {q3, q}, {q, q3}, {q3, q3}, {c, c}};
  for (int i = 0; i < n; ++i) {
    SceneShape sh{};
    sh.region = static_cast<Region>(regions[static_cast<size_t>(i)]);
    sh.kind = static_cast<Kind>(kinds[static_cast<size_t>(i)]);
    sh.color = static_cast<Color>(n == 1 && spec.color >= 0 ? spec.color : rng.below(kNumColors));
    sh.radius = std::max(2, static_cast<int>(std::floor((8 + rng.below(4)) * s)));
    sh.cx = centers[regions[static_cast<size_t>(i)]][0] + rng.below(2 * jitter + 1) - jitter;
    sh.cy = centers[regions[static_cast<size_t>(i)]][1] + rng.below(2 * jitter + 1) - jitter;
    scene.shapes.push_back(sh);
  }
  std::sort(scene.shapes.begin(), scene.shapes.end(),
            [](const SceneShape& a, const SceneShape& b) { return a.region < b.region; });
  return scene;
}

// ---- questions and answers -------------------------------------------------------------------

enum class Task { color, kind, position, count, color_of_kind, position_of_kind };

struct QA {
  std::string question, answer;
};

const std::vector<std::string> kColorQuestions = {"What color is the shape?",
                                                  "What is the color of the shape?",
                                                  "Which color does the shape have?"};
const std::vector<std::string> kKindQuestions = {
    "What shape is it?", "What shape is in the picture?", "Which shape do you see?"};
const std::vector<std::string> kPositionQuestions = {"Where is the {k}?",
                                                     "Where is the {k} in the picture?",
                                                     "In which part of the image is the {k}?"};
const std::vector<std::string> kCountQuestions = {"How many shapes are there?",
                                                  "How many shapes are in the picture?",
                                                  "Count the shapes in the image."};
const std::vector<std::string> kColorOfKindQuestions = {"What color is the {k}?",
                                                        "What is the color of the {k}?"};
const std::vector<std::string> kCaptionPrompts = {
    "Describe the picture.", "What is in the image?", "Describe this image briefly.",
    "What do you see in the picture?", "Give a short description of the image."};
const std::vector<std::string> kSystemPrompts = {
    "You are a helpful assistant.", "You are a vision assistant. Answer in a few words.",
    "Answer the question about the picture briefly."};

// Text-only knowledge, so a text-only sample is not an exception the loader never sees.
const std::vector<QA> kTextFacts = {
    {"What color do you get by mixing red and blue?", "Purple."},
    {"What color do you get by mixing blue and yellow?", "Green."},
    {"What color do you get by mixing red and yellow?", "Orange."},
    {"What color do you get by mixing red and white?", "Pink."},
    {"What color do you get by mixing black and white?", "Gray."},
    {"How many sides does a triangle have?", "Three."},
    {"How many sides does a square have?", "Four."},
    {"How many corners does a square have?", "Four."},
    {"Does a circle have corners?", "No."},
    {"What number comes after two?", "Three."},
    {"What number comes before two?", "One."},
    {"What is two plus two?", "Four."},
    {"What is one plus two?", "Three."},
    {"What color is the sky on a clear day?", "Blue."},
    {"What color is fresh grass?", "Green."},
    {"What color is a ripe banana?", "Yellow."},
    {"Which shape is round?", "A circle."},
    {"Which shape has three corners?", "A triangle."},
};

const SceneShape& shape_of_kind(const Scene& scene, Kind k) {
  for (const auto& sh : scene.shapes)
    if (sh.kind == k) return sh;
  MV_FAIL("synthetic scene has no ", kind_name(k));
}

QA ask(SceneRng& rng, const Scene& scene, Task task, Kind about = Kind::circle) {
  const SceneShape& first = scene.shapes.front();
  const std::string k = kind_name(about);
  switch (task) {
    case Task::color:
      return {rng.pick(kColorQuestions), capitalized(color_name(first.color)) + "."};
    case Task::kind:
      return {rng.pick(kKindQuestions), "A " + std::string(kind_name(first.kind)) + "."};
    case Task::position:
      return {replace_all(rng.pick(kPositionQuestions), "{k}", kind_name(first.kind)),
              capitalized(region_name(first.region)) + "."};
    case Task::count:
      return {rng.pick(kCountQuestions), std::string(kNumberWords[scene.shapes.size()]) + "."};
    case Task::color_of_kind:
      return {replace_all(rng.pick(kColorOfKindQuestions), "{k}", k),
              capitalized(color_name(shape_of_kind(scene, about).color)) + "."};
    case Task::position_of_kind:
      return {replace_all(rng.pick(kPositionQuestions), "{k}", k),
              capitalized(region_name(shape_of_kind(scene, about).region)) + "."};
  }
  MV_FAIL("unknown synthetic task");
}

std::string describe_shape(const SceneShape& sh) {
  const std::string where = sh.region == Region::center
                                ? "in the center"
                                : std::string("at the ") + region_name(sh.region);
  const std::string color = color_name(sh.color);
  const char* article = std::string("aeiou").find(color[0]) != std::string::npos ? "an " : "a ";
  return article + color + " " + kind_name(sh.kind) + " " + where;
}

std::string caption(const Scene& scene) {
  if (scene.shapes.size() == 1) return capitalized(describe_shape(scene.shapes[0])) + ".";
  std::string s = std::string(kNumberWords[scene.shapes.size()]) + " shapes: ";
  for (size_t i = 0; i < scene.shapes.size(); ++i) {
    if (i > 0) s += i + 1 == scene.shapes.size() ? " and " : ", ";
    s += describe_shape(scene.shapes[i]);
  }
  return s + ".";
}

Sample image_sample(const std::string& image, const std::vector<QA>& turns) {
  Sample s;
  s.image = image;
  for (size_t i = 0; i < turns.size(); ++i) {
    s.conversations.push_back({"user", (i == 0 ? "<image>\n" : "") + turns[i].question});
    s.conversations.push_back({"assistant", turns[i].answer});
  }
  return s;
}

// One in sixteen samples opens with a system message.
void maybe_add_system(SceneRng& rng, Sample& s) {
  if (rng.below(16) == 0)
    s.conversations.insert(s.conversations.begin(), {"system", rng.pick(kSystemPrompts)});
}

// Every question a training image can answer.
std::vector<QA> training_questions(SceneRng& rng, const Scene& scene) {
  if (scene.shapes.size() == 1)
    return {ask(rng, scene, Task::color), ask(rng, scene, Task::kind),
            ask(rng, scene, Task::position), ask(rng, scene, Task::count)};
  const Kind a = rng.pick(scene.shapes).kind, b = rng.pick(scene.shapes).kind;
  return {ask(rng, scene, Task::count), ask(rng, scene, Task::color_of_kind, a),
          ask(rng, scene, Task::position_of_kind, b)};
}

void add_training_image(Dataset& ds, SceneRng& rng, int index, int size) {
  char name[32];
  std::snprintf(name, sizeof(name), "train_%05d.png", index + 1);
  const Scene scene = make_scene(rng, size, {});
  ds.train_images.push_back({name, scene});

  ds.pretrain.push_back(image_sample(name, {{rng.pick(kCaptionPrompts), caption(scene)}}));
  std::vector<QA> qas = training_questions(rng, scene);
  for (const QA& qa : qas) {
    ds.sft.push_back(image_sample(name, {qa}));
    maybe_add_system(rng, ds.sft.back());
  }
  if (index % 3 == 0) {  // a multi-turn conversation about the same image
    rng.shuffle(qas);
    qas.resize(static_cast<size_t>(2 + rng.below(2)));
    ds.sft.push_back(image_sample(name, qas));
    maybe_add_system(rng, ds.sft.back());
  }
  if (index % 12 == 0) {  // text-only, one in four of them two turns long
    Sample s;
    const int turns = index % 48 == 0 ? 2 : 1;
    for (int t = 0; t < turns; ++t) {
      const QA& qa = rng.pick(kTextFacts);
      s.conversations.push_back({"user", qa.question});
      s.conversations.push_back({"assistant", qa.answer});
    }
    maybe_add_system(rng, s);
    ds.sft.push_back(std::move(s));
  }
}

// Eval image j asks question type j % 4 with the asked attribute cycling through its values, so
// within each type the answers are balanced (counts differ by at most one).
void add_eval_image(Dataset& ds, SceneRng& rng, int index, int size) {
  char name[32];
  std::snprintf(name, sizeof(name), "eval_%05d.png", index + 1);
  const Task tasks[] = {Task::color, Task::kind, Task::position, Task::count};
  const Task task = tasks[index % 4];
  const int cycle = index / 4;
  SceneSpec spec;
  spec.count = 1;
  switch (task) {
    case Task::color:
      spec.color = cycle % kNumColors;
      break;
    case Task::kind:
      spec.kind = cycle % kNumKinds;
      break;
    case Task::position:
      spec.region = cycle % kNumRegions;
      break;
    default:
      spec.count = 1 + cycle % 4;
      break;
  }
  const Scene scene = make_scene(rng, size, spec);
  ds.eval_images.push_back({name, scene});
  ds.eval.push_back(image_sample(name, {ask(rng, scene, task)}));
}

// ---- files -----------------------------------------------------------------------------------

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  MV_CHECK(f.good(), "cannot create ", path.string());
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  MV_CHECK(f.good(), "cannot write ", path.string());
}

std::string jsonl(const std::vector<Sample>& samples) {
  std::string out;
  for (const Sample& s : samples) out += sample_json(s) + "\n";
  return out;
}

nlohmann::ordered_json scene_json(const NamedScene& ns, const char* split) {
  nlohmann::ordered_json shapes = nlohmann::ordered_json::array();
  for (const SceneShape& sh : ns.scene.shapes)
    shapes.push_back({{"kind", kind_name(sh.kind)},
                      {"color", color_name(sh.color)},
                      {"region", region_name(sh.region)},
                      {"center", {sh.cx, sh.cy}},
                      {"radius", sh.radius}});
  return {{"image", ns.name},
          {"split", split},
          {"size", ns.scene.size},
          {"background", ns.scene.background},
          {"shapes", std::move(shapes)}};
}

}  // namespace

const char* kind_name(Kind k) { return kKindNames[static_cast<int>(k)]; }
const char* color_name(Color c) { return kColorNames[static_cast<int>(c)]; }
const char* region_name(Region r) { return kRegionNames[static_cast<int>(r)]; }
std::array<uint8_t, 3> color_rgb(Color c) { return kColorRgb[static_cast<int>(c)]; }

bool shape_covers(const SceneShape& s, int x, int y) {
  const int dx = x - s.cx, dy = y - s.cy, adx = std::abs(dx), ady = std::abs(dy), r = s.radius;
  switch (s.kind) {
    case Kind::circle:
      return dx * dx + dy * dy <= r * r;
    case Kind::square:
      return 20 * adx <= 17 * r && 20 * ady <= 17 * r;  // half side 0.85 r
    case Kind::triangle:  // apex at −r, base at +0.8 r with half width r
      return dy >= -r && 5 * dy <= 4 * r && 9 * adx <= 5 * (dy + r);
    case Kind::cross:  // arms 0.6 r thick
      return (10 * adx <= 3 * r && ady <= r) || (10 * ady <= 3 * r && adx <= r);
  }
  return false;
}

RgbImage render_scene(const Scene& scene) {
  const int n = scene.size;
  RgbImage img{n, n, std::vector<uint8_t>(static_cast<size_t>(n) * n * 3)};
  SceneRng noise(scene.noise_seed);
  for (size_t p = 0; p < static_cast<size_t>(n) * n; ++p) {
    const int d = noise.below(9) - 4;
    for (int ch = 0; ch < 3; ++ch)
      img.pixels[3 * p + ch] = static_cast<uint8_t>(std::clamp(scene.background[ch] + d, 0, 255));
  }
  for (const SceneShape& sh : scene.shapes) {
    const auto rgb = color_rgb(sh.color);
    for (int y = std::max(0, sh.cy - sh.radius); y <= std::min(n - 1, sh.cy + sh.radius); ++y)
      for (int x = std::max(0, sh.cx - sh.radius); x <= std::min(n - 1, sh.cx + sh.radius); ++x)
        if (shape_covers(sh, x, y))
          std::copy(rgb.begin(), rgb.end(),
                    img.pixels.begin() + 3 * (static_cast<size_t>(y) * n + x));
  }
  return img;
}

Dataset build_dataset(const Options& o) {
  MV_CHECK(o.image_size >= 32 && o.image_size <= 1024, "synthetic dataset: image size ",
           o.image_size, " is outside [32, 1024]");
  MV_CHECK(o.train_images >= 1 && o.train_images <= 99999, "synthetic dataset: train images ",
           o.train_images, " is outside [1, 99999]");
  MV_CHECK(o.eval_images >= 0 && o.eval_images <= 99999, "synthetic dataset: eval images ",
           o.eval_images, " is outside [0, 99999]");
  Dataset ds;
  for (int i = 0; i < o.train_images; ++i) {
    SceneRng rng = SceneRng::stream(o.seed, kTrainStream, static_cast<uint64_t>(i));
    add_training_image(ds, rng, i, o.image_size);
  }
  for (int j = 0; j < o.eval_images; ++j) {
    SceneRng rng = SceneRng::stream(o.seed, kEvalStream, static_cast<uint64_t>(j));
    add_eval_image(ds, rng, j, o.image_size);
  }
  return ds;
}

std::string sample_json(const Sample& sample) {
  nlohmann::ordered_json conv = nlohmann::ordered_json::array();
  for (const Message& m : sample.conversations)
    conv.push_back({{"role", m.role}, {"content", m.content}});
  nlohmann::ordered_json j = {{"conversations", std::move(conv)}};
  if (!sample.image.empty()) j["image"] = sample.image;
  return j.dump();
}

void write_dataset(const Dataset& ds, const Options& o, const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path root(dir), images = root / "images";
  std::error_code ec;
  fs::create_directories(images, ec);
  MV_CHECK(!ec, "cannot create ", images.string(), ": ", ec.message());
  std::string scenes;
  for (const auto* split : {&ds.train_images, &ds.eval_images}) {
    const char* split_name = split == &ds.train_images ? "train" : "eval";
    for (const NamedScene& ns : *split) {
      write_file(images / ns.name, encode_png(render_scene(ns.scene)));
      scenes += scene_json(ns, split_name).dump() + "\n";
    }
  }
  write_file(root / "pretrain.jsonl", jsonl(ds.pretrain));
  write_file(root / "sft.jsonl", jsonl(ds.sft));
  write_file(root / "eval.jsonl", jsonl(ds.eval));
  write_file(root / "scenes.jsonl", scenes);
  const nlohmann::ordered_json meta = {{"dataset", "minivlm synthetic shapes"},
                                       {"seed", o.seed},
                                       {"image_size", o.image_size},
                                       {"train_images", ds.train_images.size()},
                                       {"eval_images", ds.eval_images.size()},
                                       {"pretrain_samples", ds.pretrain.size()},
                                       {"sft_samples", ds.sft.size()},
                                       {"eval_samples", ds.eval.size()},
                                       {"kinds", kKindNames},
                                       {"colors", kColorNames},
                                       {"regions", kRegionNames},
                                       {"files",
                                        {{"images", "images/"},
                                         {"pretrain", "pretrain.jsonl"},
                                         {"sft", "sft.jsonl"},
                                         {"eval", "eval.jsonl"},
                                         {"scenes", "scenes.jsonl"}}}};
  write_file(root / "meta.json", meta.dump(2) + "\n");
}

}  // namespace minivlm::synthetic
