// The dataset of SPEC §4.1: records from a JSONL file, one conversation per line, optionally with
// images, or from a parquet file in MiniMind-V's layout (data/parquet_source.h), one conversation
// per row with its images in the row.
//
//   {"conversations": [{"role": "user", "content": "<image>\nWhat is it?"},
//                      {"role": "assistant", "content": "A red circle."}],
//    "image": "0001.png"}
//
// `image` is absent (text-only), a path relative to the images directory, a comma-separated list
// of such paths ("a.jpg, b.jpg"), or a JSON list of paths. `video` is the same for videos
// (data/video.h), also relative to the images directory; each <video> placeholder of the user
// messages becomes its video's prompt, and images and videos are taken in the order of their
// placeholders (images first, then videos, when the messages hold none). Other keys are ignored.
// A missing, corrupt or unsupported video skips the record as a bad image does. A parquet row is
// the same record with `conversations` a JSON string and its images as encoded bytes instead of
// paths: it becomes exactly the sample its JSONL twin (with those images as files) becomes.
//
// load(i) turns record i into model inputs: the images through the model's image processor
// (data/processor.h: pixel tiles and what each <image> placeholder becomes), then ChatML ids and
// label mask (text/chat.h). A record that cannot become a training sample is not an error of the
// dataset: load() returns the reason instead of a sample (SPEC §4.3) and never throws for it.
//
// Length (SPEC §4.2): a sample longer than max_seq_len (never more than the model's context) is
// skipped as over-long, its reason naming its token count and the limit. With
// SampleFormat::truncate_over_long it is cut to its first max_seq_len tokens instead, unless an
// image token lies beyond the cut — a cut through (or past) an image run would leave images
// without their tokens, so such a sample is still skipped.
//
// Media paths (SPEC §4.1): images and videos are read only under the images directory. A path that
// is absolute, or that leaves the directory once normalised — lexically ("../x.png") or after
// resolving symbolic links (a link inside the directory that points outside) — skips the record,
// naming the path, unless SampleFormat::allow_images_outside.
//
// MiniMind-V's data options (SPEC §4.4; all off by default): a random system prompt, the empty
// think block kept in only a fraction of samples, and text-only rows that carry a placeholder
// image. Their random draws are a function of (seed, epoch, record index) alone, so a resumed run
// and any number of loader threads give the same samples.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/processor.h"
#include "data/record_source.h"
#include "data/video.h"
#include "text/chat.h"
#include "text/tokenizer.h"

namespace minivlm {

struct ModelConfig;

struct SampleFormat {
  int64_t max_seq_len = 512;
  // Tiles and placeholder text of each image, and the image token.
  std::shared_ptr<const ImageProcessor> images;
  // Tiles and placeholder text of each video (null: records with videos are skipped).
  std::shared_ptr<const VideoProcessor> videos;
  std::string pad_token = "<|endoftext|>";
  // A sample longer than max_seq_len: skipped (false) or cut at max_seq_len (true).
  bool truncate_over_long = false;
  // Read image and video paths that are absolute or leave the images directory.
  bool allow_images_outside = false;

  // MiniMind-V's data options (off by default).
  // Probability that a conversation without a system message gains one of
  // minimind_system_prompts(), drawn uniformly (MiniMind-V: 0.2).
  double system_prompt_prob = 0.0;
  // Fraction of samples whose replies without reasoning keep the empty think block that the
  // chat template writes (text/chat.h; only minimind3 writes one). 1 keeps the template's
  // rendering; MiniMind-V keeps 0.2.
  double keep_empty_think = 1.0;
  // A record whose user messages hold no <image> or <video> placeholder is text-only: its images
  // and videos (MiniMind-V's text rows carry a black placeholder image) are not read. Off: they
  // are put before the first user message (SPEC §3).
  bool ignore_unreferenced_images = false;
  // Seed of the per-sample draws above (the training seed).
  uint64_t seed = 42;

  // The image processor of a model (ImageProcessor::for_model).
  // max_seq_len is capped at the model's context (llm.max_position_embeddings).
  static SampleFormat for_model(const ModelConfig& config, int64_t max_seq_len);
};

namespace cli {
class Args;
}

// The data flags `eval` and `check-data` share (--over-long skip|truncate, --allow-images-outside,
// --ignore-unreferenced-images) onto `format`. Throws minivlm::Error naming `prog` on a bad value.
void apply_data_flags(const cli::Args& args, const std::string& prog, SampleFormat& format);

struct Sample {
  std::vector<int32_t> ids;     // [T], T ≤ max_seq_len
  std::vector<uint8_t> labels;  // [T] 1 where token t is a supervised target (predicted by t−1)
  std::vector<float> pixels;    // [tiles, 3, S, S]: the tiles of every image, image by image
  int num_images = 0;           // images and videos (a video is one image of N tiles)
  std::vector<int64_t> tiles_per_image;  // [num_images]
  bool truncated = false;                // text beyond max_seq_len was cut off
  // Supervised targets that carry loss: labels at positions 1..T−1.
  int64_t supervised_tokens() const;
};

// A sample, or why the record was skipped.
struct SampleResult {
  std::optional<Sample> sample;
  std::string skip_reason;  // set exactly when !sample
  // Tokens of the rendered sample before any cut; 0 when the record was skipped before rendering.
  int64_t tokens = 0;
};

// MiniMind-V's ten system prompts (dataset/lm_dataset.py, pre_processing_chat), in its order.
const std::vector<std::string>& minimind_system_prompts();

// A record as a generation prompt (`eval --generate`): the turns before its last assistant
// message, that message as the reference answer, and the record's images.
struct PromptRecord {
  std::vector<Message> context;  // ends with a user message
  std::string reference;
  ProcessedImages images;
};

struct PromptResult {
  std::optional<PromptRecord> record;
  std::string skip_reason;  // set exactly when !record
};

class Dataset {
 public:
  // Indexes `data` (one streaming pass): a parquet file when its name ends in ".parquet", else
  // JSONL (data/record_source.h). `images_dir` resolves JSONL image paths; it may be empty for a
  // text-only dataset (and for parquet, whose rows carry their images), and then a record that
  // names images is skipped. The tokenizer must outlive the dataset. Throws minivlm::Error naming
  // the path when the file cannot be read or is not a dataset, the images directory is not a
  // readable directory, the format has no image processor, or the tokenizer lacks the pad or
  // image token.
  Dataset(const std::string& data, const std::string& images_dir, const Tokenizer& tokenizer,
          const SampleFormat& format);

  size_t size() const { return source_->size(); }  // JSONL: non-empty lines; parquet: rows
  const std::string& path() const { return source_->path(); }
  // Where record i is: "FILE:LINE" (JSONL) or "FILE:row N" (parquet, 0-based).
  std::string location(size_t i) const { return source_->location(i); }
  const SampleFormat& format() const { return format_; }
  int32_t pad_id() const { return pad_id_; }
  const ImageProcessor& images() const { return *format_.images; }

  // Record i as a sample, or the reason it is skipped. Thread-safe. Throws only for failures of
  // the dataset itself (the file changed under its index). `epoch` seeds the random data options
  // of the format with (format().seed, epoch, i); without them it does not matter.
  SampleResult load(size_t i, int64_t epoch = 0) const;

  // Record i as a generation prompt, or the reason it cannot be one. Thread-safe.
  PromptResult load_prompt(size_t i) const;

  // The one-line warning for a skipped record i: "warning: LOCATION: skipped sample: REASON".
  std::string skip_warning(size_t i, const std::string& reason) const;

 private:
  // The messages and image paths of a record, or why it is unusable.
  std::optional<std::string> parse_record(const Record& rec, std::vector<Message>& messages,
                                          std::vector<std::string>& images,
                                          std::vector<std::string>& videos) const;
  SampleResult encode(const std::vector<Message>& messages, ProcessedImages images,
                      const ChatOptions& chat) const;
  // The images and videos of a record, in the order of the messages' placeholders.
  std::optional<std::string> load_media(const std::vector<std::string>& paths,
                                        const std::vector<std::string>& videos,
                                        const std::vector<Message>& messages,
                                        ProcessedImages& out) const;
  // The images a record carries (parquet), in the order of the messages' placeholders.
  std::optional<std::string> load_image_bytes(const std::vector<std::string>& blobs,
                                              const std::vector<Message>& messages,
                                              ProcessedImages& out) const;

  std::unique_ptr<RecordSource> source_;
  std::string images_dir_;
  const Tokenizer& tokenizer_;
  SampleFormat format_;
  int32_t pad_id_ = 0;
  int32_t image_id_ = -1;
};

// The dataset's former name, from when it read only JSONL.

}  // namespace minivlm
