#include "data/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/args.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/json_file.h"
#include "nn/config.h"

namespace minivlm {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A reason quoting a huge value (a 100 KB role, a long line in a parse error) keeps its head and
// tail: one warning line stays readable. Cuts fall on UTF-8 character boundaries.
std::string shortened(std::string reason) {
  constexpr size_t kHead = 240, kTail = 60;
  if (reason.size() <= kHead + kTail + 40) return reason;
  const auto boundary = [&](size_t k) {
    while (k > 0 && (static_cast<unsigned char>(reason[k]) & 0xC0) == 0x80) --k;
    return k;
  };
  const size_t head = boundary(kHead), tail = boundary(reason.size() - kTail);
  return reason.substr(0, head) + " … [" + std::to_string(tail - head) + " bytes omitted] … " +
         reason.substr(tail);
}

SampleResult skip(std::string reason) { return {std::nullopt, shortened(std::move(reason))}; }

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

// Whether `path` is `dir` or lies under it, component by component (both normalised).
bool is_within(const fs::path& path, const fs::path& dir) {
  auto p = path.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++p) {
    if (d->empty() && std::next(d) == dir.end()) break;  // "dir/" ends in an empty component
    if (p == path.end() || *p != *d) return false;
  }
  return true;
}

// The file of the media path `name` of a record (`kind`: "image" or "video"), or why it is
// refused: unless `allow_outside`, a path that is absolute or that leaves `dir` once normalised,
// lexically or after resolving symbolic links.
std::optional<std::string> media_file(const std::string& dir, const std::string& name,
                                      const std::string& kind, bool allow_outside,
                                      std::string& file) {
  const fs::path p(name);
  file = (fs::path(dir) / p).string();
  if (allow_outside) return std::nullopt;
  const std::string refused = kind + " path '" + name + "' is outside the images directory " + dir;
  const std::string hint = "; allow_images_outside reads it)";
  if (p.is_absolute()) return refused + " (an absolute path" + hint;
  const fs::path lexical = p.lexically_normal();
  if (!lexical.empty() && *lexical.begin() == "..") return refused + " (it goes up with .." + hint;
  std::error_code ec1, ec2;
  const fs::path real = fs::weakly_canonical(file, ec1), root = fs::weakly_canonical(dir, ec2);
  if (ec1 || ec2)
    return "cannot resolve " + kind + " path " + file + ": " + (ec1 ? ec1 : ec2).message();
  if (!is_within(real, root)) return refused + " (a symbolic link to " + real.string() + hint;
  return std::nullopt;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The random stream of one data option (`salt`) for record i in `epoch`: a function of these
// alone, not of the order or the thread that loads the record.
Rng sample_rng(uint64_t seed, int64_t epoch, size_t i, uint64_t salt) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<uint64_t>(epoch));
  h = splitmix64(h ^ static_cast<uint64_t>(i));
  return Rng(splitmix64(h ^ salt));
}

// MiniMind-V's per-sample options (pre_processing_chat, post_processing_chat): the random system
// prompt goes into `messages`; the returned options say whether the empty think block is kept.
ChatOptions draw_chat_options(const SampleFormat& f, size_t i, int64_t epoch,
                              std::vector<Message>& messages) {
  ChatOptions chat;
  const bool has_system = std::any_of(messages.begin(), messages.end(),
                                      [](const Message& m) { return m.role == "system"; });
  if (f.system_prompt_prob > 0 && !has_system) {
    Rng rng = sample_rng(f.seed, epoch, i, 1);
    if (rng.uniform() < f.system_prompt_prob) {
      const std::vector<std::string>& prompts = minimind_system_prompts();
      messages.insert(messages.begin(), Message{"system", prompts[rng.below(prompts.size())]});
    }
  }
  if (f.keep_empty_think < 1)
    chat.empty_think = sample_rng(f.seed, epoch, i, 2).uniform() < f.keep_empty_think;
  return chat;
}

}  // namespace

const std::vector<std::string>& minimind_system_prompts() {
  static const std::vector<std::string> prompts = {
      "你是一个知识丰富的AI，尽力为用户提供准确的信息。",
      "你是minimind，一个小巧但有用的语言模型。",
      "你是一个专业的AI助手，请提供有价值的回答。",
      "你是minimind，请尽力帮助用户解决问题。",
      "你是一个可靠的AI，请给出准确的回答。",
      "You are a helpful AI assistant.",
      "You are minimind, a lightweight intelligent assistant.",
      "You are a friendly chatbot. Please answer the user's questions carefully.",
      "You are a knowledgeable AI. Try your best to provide accurate information.",
      "You are minimind, a small but useful language model.",
  };
  return prompts;
}

SampleFormat SampleFormat::for_model(const ModelConfig& config, int64_t max_seq_len) {
  SampleFormat f;
  // Never beyond the model's context: a longer sample would end the run in the forward pass.
  f.max_seq_len = std::min(max_seq_len, config.llm.max_position_embeddings);
  f.images = ImageProcessor::for_model(config);
  f.videos = std::make_shared<const VideoProcessor>(VideoProcessor::for_model(config, f.images));
  return f;
}

void apply_data_flags(const cli::Args& args, const std::string& prog, SampleFormat& format) {
  const std::string over_long = args.get("over-long", "skip");
  MV_CHECK(over_long == "skip" || over_long == "truncate", prog,
           ": --over-long must be skip or truncate, got '", over_long, "'");
  format.truncate_over_long = over_long == "truncate";
  format.allow_images_outside = args.has("allow-images-outside");
  format.ignore_unreferenced_images = args.has("ignore-unreferenced-images");
}

int64_t Sample::supervised_tokens() const {
  return labels.empty() ? 0 : std::count(labels.begin() + 1, labels.end(), uint8_t{1});
}

Dataset::Dataset(const std::string& jsonl, const std::string& images_dir,
                 const Tokenizer& tokenizer, const SampleFormat& format)
    : source_(open_record_source(jsonl)),
      images_dir_(images_dir),
      tokenizer_(tokenizer),
      format_(format) {
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

std::string Dataset::skip_warning(size_t i, const std::string& reason) const {
  return "warning: " + location(i) + ": skipped sample: " + reason;
}

// The image processor decides what each <image> becomes (a split image's prompt depends on its
// size), so the images are read before the text is encoded.
SampleResult Dataset::load(size_t i, int64_t epoch) const {
  std::vector<Message> messages;
  std::vector<std::string> paths, videos;
  const Record rec = source_->record(i);
  if (std::optional<std::string> bad = parse_record(rec, messages, paths, videos))
    return skip(*bad);
  ProcessedImages images;
  if (std::optional<std::string> bad = rec.image_bytes.empty()
                                           ? load_media(paths, videos, messages, images)
                                           : load_image_bytes(rec.image_bytes, messages, images))
    return skip(*bad);
  const ChatOptions chat = draw_chat_options(format_, i, epoch, messages);
  return encode(messages, std::move(images), chat);
}

std::optional<std::string> Dataset::parse_record(const Record& rec, std::vector<Message>& messages,
                                                 std::vector<std::string>& images,
                                                 std::vector<std::string>& videos) const {
  if (!rec.error.empty()) return rec.error;
  json record;
  try {
    record = parse_json_limited(rec.text);
  } catch (const json::parse_error& e) {
    return std::string(rec.text_is_conversations ? "malformed 'conversations' JSON: "
                                                 : "malformed JSON: ") +
           json_reason(e.what());
  }
  // A parquet row's text is the conversations list alone; its images are bytes, not paths.
  if (rec.text_is_conversations) record = json{{"conversations", std::move(record)}};
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

SampleResult Dataset::encode(const std::vector<Message>& messages, ProcessedImages images,
                             const ChatOptions& chat) const {
  // encode_chat rejects what only rendering can tell: a placeholder count that does not fit the
  // images, images without a user message, text that spells the image token itself.
  Sample s;
  try {
    EncodedChat enc =
        encode_chat(tokenizer_, messages, images.prompts, format_.images->image_token(), chat);
    s.ids = std::move(enc.ids);
    s.labels = std::move(enc.labels);
  } catch (const Error& e) {
    return skip(without_location(e.what()));
  }
  s.num_images = static_cast<int>(images.count());
  s.pixels = std::move(images.pixels);
  s.tiles_per_image = std::move(images.tiles_per_image);

  const int64_t tokens = static_cast<int64_t>(s.ids.size());
  const auto skip_encoded = [tokens](std::string reason) {
    SampleResult r = skip(std::move(reason));
    r.tokens = tokens;
    return r;
  };
  const size_t max_len = static_cast<size_t>(format_.max_seq_len);
  if (s.ids.size() > max_len) {
    const std::string over = "over-long: " + std::to_string(s.ids.size()) +
                             " tokens exceed max_seq_len " + std::to_string(max_len);
    if (!format_.truncate_over_long)
      return skip_encoded(over + " (--over-long truncate cuts such samples instead)");
    if (std::find(s.ids.begin() + max_len, s.ids.end(), image_id_) != s.ids.end())
      return skip_encoded(over + " and the cut would go through an image run");
    s.ids.resize(max_len);
    s.labels.resize(max_len);
    s.truncated = true;
  }
  if (s.supervised_tokens() == 0)
    return skip_encoded(s.truncated
                            ? "no supervised token within max_seq_len " + std::to_string(max_len)
                            : std::string("no supervised token (no assistant reply)"));
  return {std::move(s), {}, tokens};
}

PromptResult Dataset::load_prompt(size_t i) const {
  PromptResult r;
  std::vector<Message> messages;
  std::vector<std::string> images, videos;
  const Record raw = source_->record(i);
  if (std::optional<std::string> bad = parse_record(raw, messages, images, videos)) {
    r.skip_reason = shortened(*bad);
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
  if (std::optional<std::string> bad =
          raw.image_bytes.empty() ? load_media(images, videos, rec.context, rec.images)
                                  : load_image_bytes(raw.image_bytes, rec.context, rec.images)) {
    r.skip_reason = shortened(*bad);
    return r;
  }
  r.record = std::move(rec);
  return r;
}

std::optional<std::string> Dataset::load_media(const std::vector<std::string>& paths,
                                               const std::vector<std::string>& videos,
                                               const std::vector<Message>& messages,
                                               ProcessedImages& out) const {
  // MiniMind-V's text rows carry a placeholder image that their text never refers to.
  if (format_.ignore_unreferenced_images && placeholder_kinds(messages).empty()) {
    out = ProcessedImages{};
    return std::nullopt;
  }
  std::vector<ProcessedImage> images, clips;
  for (const std::string& name : paths) {
    std::string file;
    if (std::optional<std::string> bad =
            media_file(images_dir_, name, "image", format_.allow_images_outside, file))
      return bad;
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
    std::string file;
    if (std::optional<std::string> bad =
            media_file(images_dir_, name, "video", format_.allow_images_outside, file))
      return bad;
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

std::optional<std::string> Dataset::load_image_bytes(const std::vector<std::string>& blobs,
                                                     const std::vector<Message>& messages,
                                                     ProcessedImages& out) const {
  if (format_.ignore_unreferenced_images && placeholder_kinds(messages).empty()) {
    out = ProcessedImages{};  // MiniMind-V's text rows: an 8x8 placeholder never referred to
    return std::nullopt;
  }
  std::vector<ProcessedImage> images;
  for (size_t k = 0; k < blobs.size(); ++k) {
    const std::string what = "image_bytes[" + std::to_string(k) + "]";
    try {
      const auto* bytes = reinterpret_cast<const uint8_t*>(blobs[k].data());
      images.push_back(format_.images->process(decode_rgb_image(bytes, blobs[k].size(), what)));
    } catch (const std::exception& e) {
      return "corrupt or unreadable image " + what + " (" + without_location(e.what()) + ")";
    }
  }
  out = in_placeholder_order(messages, std::move(images), {});
  return std::nullopt;
}

}  // namespace minivlm
