#include "data/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/error.h"
#include "core/json_file.h"
#include "nn/config.h"

namespace minivlm {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

SampleResult skip(std::string reason) { return {std::nullopt, std::move(reason)}; }

// minivlm::Error messages start with the throwing source's "file.cpp:123: "; a data warning
// already names its own file and line, so that part is noise there.
std::string without_location(const std::string& what) {
  const size_t colon = what.find(": ");
  if (colon == std::string::npos) return what;
  const std::string_view head(what.data(), colon);
  const size_t last = head.rfind(':');
  if (last == std::string_view::npos || last + 1 == head.size() ||
      head.find(' ') != std::string_view::npos)
    return what;
  for (size_t k = last + 1; k < head.size(); ++k)
    if (head[k] < '0' || head[k] > '9') return what;
  return what.substr(colon + 2);
}

// nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 7: ..." without the
// bracketed id.
std::string json_reason(const std::string& what) {
  const size_t close = what.find("] ");
  return what.substr(close == std::string::npos ? 0 : close + 2);
}

std::string trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return std::string(s);
}

// The paths of a record's `field` ("image" or "video"), or the reason the field is unusable.
std::optional<std::string> media_paths(const json& record, const std::string& field,
                                       std::vector<std::string>& out) {
  const auto it = record.find(field);
  if (it == record.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) {
    const std::string all = it->get<std::string>();
    if (trim(all).empty()) return std::nullopt;
    size_t from = 0;
    for (;;) {
      const size_t comma = all.find(',', from);
      out.push_back(trim(std::string_view(all).substr(from, comma - from)));
      if (out.back().empty()) return "empty path in '" + field + "' \"" + all + "\"";
      if (comma == std::string::npos) return std::nullopt;
      from = comma + 1;
    }
  }
  if (it->is_array()) {
    for (const json& p : *it) {
      if (!p.is_string()) return "'" + field + "' must be a string or a list of strings";
      out.push_back(trim(p.get<std::string>()));
      if (out.back().empty()) return "empty path in the '" + field + "' list";
    }
    return std::nullopt;
  }
  return "'" + field + "' must be a string or a list of strings";
}

// The conversation of a record, or the reason it is unusable.
std::optional<std::string> conversation(const json& record, std::vector<Message>& out) {
  const auto it = record.find("conversations");
  if (it == record.end()) return "missing field 'conversations'";
  if (!it->is_array() || it->empty())
    return "'conversations' must be a non-empty list of {role, content}";
  for (size_t k = 0; k < it->size(); ++k) {
    const json& m = (*it)[k];
    const std::string where = "conversations[" + std::to_string(k) + "]";
    if (!m.is_object()) return where + " is not an object";
    for (const char* field : {"role", "content"}) {
      const auto f = m.find(field);
      if (f == m.end()) return "missing field '" + std::string(field) + "' in " + where;
      if (!f->is_string()) return "'" + std::string(field) + "' in " + where + " is not a string";
    }
    Message msg{m["role"].get<std::string>(), m["content"].get<std::string>()};
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      return "unknown role '" + msg.role + "' in " + where +
             " (valid roles: system, user, assistant)";
    out.push_back(std::move(msg));
  }
  return std::nullopt;
}

bool readable_directory(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && ::access(dir.c_str(), R_OK | X_OK) == 0;
}

}  // namespace

SampleFormat SampleFormat::for_model(const ModelConfig& config, int64_t max_seq_len) {
  SampleFormat f;
  // Never beyond the model's context: a longer sample would end the run in the forward pass.
  f.max_seq_len = std::min(max_seq_len, config.llm.max_position_embeddings);
  f.images = ImageProcessor::for_model(config);
  f.videos = std::make_shared<const VideoProcessor>(VideoProcessor::for_model(config, f.images));
  return f;
}

int64_t Sample::supervised_tokens() const {
  return labels.empty() ? 0 : std::count(labels.begin() + 1, labels.end(), uint8_t{1});
}

JsonlDataset::JsonlDataset(const std::string& jsonl, const std::string& images_dir,
                           const Tokenizer& tokenizer, const SampleFormat& format)
    : index_(jsonl), images_dir_(images_dir), tokenizer_(tokenizer), format_(format) {
  MV_CHECK(format_.max_seq_len > 1, "dataset ", jsonl, ": max_seq_len must be at least 2, got ",
           format_.max_seq_len);
  MV_CHECK(images_dir_.empty() || readable_directory(images_dir_), "images directory ", images_dir_,
           " (for ", jsonl, ") is not a readable directory");
  const std::optional<int32_t> pad = tokenizer_.find_token(format_.pad_token);
  MV_CHECK(pad.has_value(), "dataset ", jsonl, ": the tokenizer has no pad token ",
           format_.pad_token);
  pad_id_ = *pad;
  MV_CHECK(format_.images != nullptr, "dataset ", jsonl,
           ": the sample format has no image processor");
  const std::optional<int32_t> image = tokenizer_.find_token(format_.images->image_token());
  MV_CHECK(image.has_value(), "dataset ", jsonl, ": the tokenizer has no image token ",
           format_.images->image_token());
  image_id_ = *image;
}

std::string JsonlDataset::skip_warning(size_t i, const std::string& reason) const {
  return "warning: " + path() + ":" + std::to_string(line_number(i)) +
         ": skipped sample: " + reason;
}

// The image processor decides what each <image> becomes (a split image's prompt depends on its
// size), so the images are read before the text is encoded.
SampleResult JsonlDataset::load(size_t i) const {
  std::vector<Message> messages;
  std::vector<std::string> paths, videos;
  if (std::optional<std::string> bad = parse_record(index_.read(i), messages, paths, videos))
    return skip(*bad);
  ProcessedImages images;
  if (std::optional<std::string> bad = load_media(paths, videos, messages, images))
    return skip(*bad);
  return encode(messages, std::move(images));
}

std::optional<std::string> JsonlDataset::parse_record(const std::string& text,
                                                      std::vector<Message>& messages,
                                                      std::vector<std::string>& images,
                                                      std::vector<std::string>& videos) const {
  json record;
  try {
    record = parse_json_limited(text);
  } catch (const json::parse_error& e) {
    return "malformed JSON: " + json_reason(e.what());
  }
  if (!record.is_object())
    return std::string("malformed record: expected a JSON object, got ") + record.type_name();
  if (std::optional<std::string> bad = conversation(record, messages)) return bad;
  if (std::optional<std::string> bad = media_paths(record, "image", images)) return bad;
  if (std::optional<std::string> bad = media_paths(record, "video", videos)) return bad;
  if (!images.empty() && images_dir_.empty())
    return "the sample has images but no images directory was given";
  if (!videos.empty() && images_dir_.empty())
    return "the sample has videos but no images directory was given";
  return std::nullopt;
}

SampleResult JsonlDataset::encode(const std::vector<Message>& messages,
                                  ProcessedImages images) const {
  // encode_chat rejects what only rendering can tell: a placeholder count that does not fit the
  // images, images without a user message, text that spells the image token itself.
  Sample s;
  try {
    EncodedChat enc =
        encode_chat(tokenizer_, messages, images.prompts, format_.images->image_token());
    s.ids = std::move(enc.ids);
    s.labels = std::move(enc.labels);
  } catch (const Error& e) {
    return skip(without_location(e.what()));
  }
  s.num_images = static_cast<int>(images.count());
  s.pixels = std::move(images.pixels);
  s.tiles_per_image = std::move(images.tiles_per_image);

  const size_t max_len = static_cast<size_t>(format_.max_seq_len);
  if (s.ids.size() > max_len) {
    if (std::find(s.ids.begin() + max_len, s.ids.end(), image_id_) != s.ids.end())
      return skip("over-long: " + std::to_string(s.ids.size()) + " tokens exceed max_seq_len " +
                  std::to_string(max_len) + " and the cut would go through an image run");
    s.ids.resize(max_len);
    s.labels.resize(max_len);
    s.truncated = true;
  }
  if (s.supervised_tokens() == 0)
    return skip(s.truncated ? "no supervised token within max_seq_len " + std::to_string(max_len)
                            : std::string("no supervised token (no assistant reply)"));
  return {std::move(s), {}};
}

PromptResult JsonlDataset::load_prompt(size_t i) const {
  PromptResult r;
  std::vector<Message> messages;
  std::vector<std::string> images, videos;
  if (std::optional<std::string> bad = parse_record(index_.read(i), messages, images, videos)) {
    r.skip_reason = *bad;
    return r;
  }
  size_t last = messages.size();
  while (last > 0 && messages[last - 1].role != "assistant") --last;
  if (last == 0) {
    r.skip_reason = "no assistant reply to compare with";
    return r;
  }
  PromptRecord rec;
  rec.reference = messages[last - 1].content;
  rec.context.assign(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(last - 1));
  if (rec.context.empty() || rec.context.back().role != "user") {
    r.skip_reason = "the last assistant reply does not follow a user message";
    return r;
  }
  if (std::optional<std::string> bad = load_media(images, videos, rec.context, rec.images)) {
    r.skip_reason = *bad;
    return r;
  }
  r.record = std::move(rec);
  return r;
}

std::optional<std::string> JsonlDataset::load_media(const std::vector<std::string>& paths,
                                                    const std::vector<std::string>& videos,
                                                    const std::vector<Message>& messages,
                                                    ProcessedImages& out) const {
  std::vector<ProcessedImage> images, clips;
  for (const std::string& name : paths) {
    const std::string file = (fs::path(images_dir_) / name).string();
    std::error_code ec;
    if (!fs::exists(file, ec)) return "missing image " + file;
    try {
      images.push_back(format_.images->process(load_rgb_image(file)));
    } catch (const std::exception& e) {
      return "corrupt or unreadable image " + file + " (" + without_location(e.what()) + ")";
    }
  }
  if (!videos.empty() && !format_.videos) return "the sample has videos but the model takes none";
  for (const std::string& name : videos) {
    const std::string file = (fs::path(images_dir_) / name).string();
    std::error_code ec;
    if (!fs::exists(file, ec)) return "missing video " + file;
    try {
      clips.push_back(format_.videos->process(file));
    } catch (const std::exception& e) {
      return "corrupt or unusable video " + file + " (" + without_location(e.what()) + ")";
    }
  }
  out = in_placeholder_order(messages, std::move(images), std::move(clips));
  return std::nullopt;
}

}  // namespace minivlm
