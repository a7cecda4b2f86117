// The synthetic shapes dataset: the embedded default that runs the whole pipeline with no download.
//
// Each image is a light, lightly noisy background with 1–4 flat shapes (circle, square, triangle,
// cross) in six colors. A single shape sits in one of five regions (the four quadrants or the
// center); several shapes take distinct quadrants and are of distinct kinds, so "the square" always
// names one shape. Every answer is short and follows from the picture alone:
//   "What color is the shape?" → "Red."      "What shape is it?" → "A circle."
//   "Where is the circle?" → "Top left."     "How many shapes are there?" → "Three."
// The held-out eval set has its own images, and its answers are balanced within each question type
// (the asked attribute cycles through its values), so a model that ignores the image stays at
// chance. Everything follows from the seed through a fixed PRNG, so a seed names the same bytes on
// every platform.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "text/chat.h"

namespace minivlm::synthetic {

enum class Kind : uint8_t { circle, square, triangle, cross };
enum class Color : uint8_t { red, green, blue, yellow, purple, orange };
enum class Region : uint8_t { top_left, top_right, bottom_left, bottom_right, center };
constexpr int kNumKinds = 4, kNumColors = 6, kNumRegions = 5;

const char* kind_name(Kind k);      // "circle"
const char* color_name(Color c);    // "red"
const char* region_name(Region r);  // "top left"
std::array<uint8_t, 3> color_rgb(Color c);

struct SceneShape {
  Kind kind;
  Color color;
  Region region;
  int cx, cy;  // center pixel (column, row)
  int radius;  // half extent in pixels
};

struct Scene {
  int size = 64;  // width = height
  std::array<uint8_t, 3> background{};
  uint64_t noise_seed = 0;         // per-pixel background noise of ±4
  std::vector<SceneShape> shapes;  // in region order
};

// Whether pixel (x, y) belongs to the shape; render_scene paints exactly these pixels flat.
bool shape_covers(const SceneShape& s, int x, int y);
RgbImage render_scene(const Scene& scene);

struct Sample {
  std::vector<Message> conversations;
  std::string image;  // file name under images/; empty for a text-only sample
};

struct NamedScene {
  std::string name;  // "train_00001.png", "eval_00001.png"
  Scene scene;
};

struct Options {
  uint64_t seed = 42;
  int image_size = 64;
  int train_images = 2000;
  int eval_images = 400;
};

struct Dataset {
  std::vector<NamedScene> train_images, eval_images;
  std::vector<Sample> pretrain, sft, eval;
};

// The whole dataset in memory; deterministic in `options`. Throws on sizes out of range.
Dataset build_dataset(const Options& options);

// Writes DIR/images/*.png, pretrain.jsonl, sft.jsonl, eval.jsonl (SPEC §4.1), scenes.jsonl (each
// image's scene: shapes, colors, regions, centers) and meta.json (options and counts).
void write_dataset(const Dataset& dataset, const Options& options, const std::string& dir);

// One JSONL line (no newline): {"conversations": [...], "image": "..."}.
std::string sample_json(const Sample& sample);

}  // namespace minivlm::synthetic
