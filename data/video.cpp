#include "data/video.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "core/file_check.h"
#include "nn/config.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/error.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace minivlm {

namespace {

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

// AVFormatContext::io_open that opens the context's own file (its opaque, a std::string path),
// read-only and through the file protocol, and nothing else.
int open_only_this_file(AVFormatContext* s, AVIOContext** pb, const char* url, int flags,
                        AVDictionary** options) {
  const std::string& path = *static_cast<const std::string*>(s->opaque);
  if (url == nullptr || path != url || (flags & AVIO_FLAG_WRITE) != 0) return AVERROR(EPERM);
  return avio_open2(pb, ("file:" + path).c_str(), flags, &s->interrupt_callback, options);
}

// Demuxers that open resources named inside the file (playlists, concatenation lists, image
// sequences, session descriptions, scripts) or the network: refused, so that a video file cannot
// make the reader open a FIFO, a device or another host.
constexpr const char* kRefusedDemuxers[] = {"concat",
                                            "hls",
                                            "applehttp",
                                            "dash",
                                            "imf",
                                            "image2",
                                            "sdp",
                                            "rtsp",
                                            "rtp",
                                            "sap",
                                            "avisynth",
                                            "vapoursynth",
                                            "webm_dash_manifest"};

// Every other demuxer this FFmpeg has, as a format_whitelist.
const std::string& allowed_demuxers() {
  static const std::string list = [] {
    std::string out;
    void* it = nullptr;
    while (const AVInputFormat* f = av_demuxer_iterate(&it)) {
      const std::string names = f->name;
      bool refused = false;
      for (const char* r : kRefusedDemuxers)
        refused = refused || av_match_list(r, names.c_str(), ',') > 0;
      if (!refused) out += (out.empty() ? "" : ",") + names;
    }
    return out;
  }();
  return list;
}

// An open video file: its container, best video stream and a decoder for it.
class VideoFile {
 public:
  explicit VideoFile(const std::string& path) : path_(path) {
    // FFmpeg's own log lines on stderr would repeat what the errors below say.
    static const bool quiet = (av_log_set_level(AV_LOG_FATAL), true);
    (void)quiet;
    // By name first: opening a FIFO would wait for a writer.
    require_regular_file(path, "video");
    AVFormatContext* raw = avformat_alloc_context();
    MV_CHECK(raw != nullptr, "video ", path, ": out of memory");
    // The demuxer may open only this file: playlist and concat formats would otherwise follow the
    // names inside it to other files, FIFOs and devices included, or to the network.
    raw->opaque = &path_;
    raw->io_open = open_only_this_file;
    // Inner contexts that a demuxer opens copy these lists (not io_open).
    raw->format_whitelist = av_strdup(allowed_demuxers().c_str());
    raw->protocol_whitelist = av_strdup("file");
    if (raw->format_whitelist == nullptr || raw->protocol_whitelist == nullptr) {
      avformat_free_context(raw);
      MV_FAIL("video ", path, ": out of memory");
    }
    const int open = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
    MV_CHECK(open >= 0, "video ", path, ": not a video FFmpeg can read (", av_error(open), ")");
    format_.reset(raw);
    const int info = avformat_find_stream_info(raw, nullptr);
    MV_CHECK(info >= 0, "video ", path, ": cannot read its streams (", av_error(info), ")");
    const AVCodec* codec = nullptr;
    stream_index_ = av_find_best_stream(raw, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    MV_CHECK(stream_index_ != AVERROR_STREAM_NOT_FOUND, "video ", path, ": no video stream");
    MV_CHECK(stream_index_ >= 0 && codec != nullptr, "video ", path,
             ": no decoder for its video stream (", av_error(stream_index_), ")");
    stream_ = raw->streams[stream_index_];
    codec_.reset(avcodec_alloc_context3(codec));
    MV_CHECK(codec_ != nullptr, "video ", path, ": out of memory");
    MV_CHECK(avcodec_parameters_to_context(codec_.get(), stream_->codecpar) >= 0, "video ", path,
             ": bad codec parameters");
    codec_->thread_count = 1;
    const int opened = avcodec_open2(codec_.get(), codec, nullptr);
    MV_CHECK(opened >= 0, "video ", path, ": cannot open its ", codec->name, " decoder (",
             av_error(opened), ")");
  }

  const AVStream& stream() const { return *stream_; }

  // Decodes frame after frame in presentation order; `on_frame(index, frame)` returns false to
  // stop. Returns the number of frames decoded.
  template <class F>
  int64_t decode(F&& on_frame) {
    std::unique_ptr<AVPacket, PacketFreer> packet(av_packet_alloc());
    std::unique_ptr<AVFrame, FrameFreer> frame(av_frame_alloc());
    MV_CHECK(packet && frame, "video ", path_, ": out of memory");
    int64_t index = 0;
    bool more = true, stop = false;
    auto receive = [&] {
      for (;;) {
        const int r = avcodec_receive_frame(codec_.get(), frame.get());
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
        MV_CHECK(r >= 0, "video ", path_, ": corrupt frame ", index, " (", av_error(r), ")");
        stop = !on_frame(index++, *frame);
        av_frame_unref(frame.get());
        if (stop) return;
      }
    };
    while (more && !stop) {
      const int r = av_read_frame(format_.get(), packet.get());
      if (r == AVERROR_EOF) {
        more = false;
        avcodec_send_packet(codec_.get(), nullptr);  // flush
      } else {
        MV_CHECK(r >= 0, "video ", path_, ": cannot read (", av_error(r), ")");
        if (packet->stream_index == stream_index_) {
          const int s = avcodec_send_packet(codec_.get(), packet.get());
          av_packet_unref(packet.get());
          MV_CHECK(s >= 0 || s == AVERROR(EAGAIN), "video ", path_, ": corrupt data near frame ",
                   index, " (", av_error(s), ")");
        } else {
          av_packet_unref(packet.get());
        }
      }
      receive();
    }
    return index;
  }

 private:
  std::string path_;
  std::unique_ptr<AVFormatContext, FormatCloser> format_;
  std::unique_ptr<AVCodecContext, CodecFreer> codec_;
  AVStream* stream_ = nullptr;
  int stream_index_ = -1;
};

std::string pix_fmt_name(int format) {
  const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(format));
  return name ? name : "#" + std::to_string(format);
}

// Frame sizes within the image pixel limit (data/image.h).
void check_frame_size(int64_t width, int64_t height, const std::string& path) {
  MV_CHECK(width > 0 && height > 0, "video ", path, ": frames of ", width, "x", height, " pixels");
  const int64_t limit = max_image_pixels();
  MV_CHECK(width <= limit && height <= limit && width * height <= limit, "video ", path,
           ": frames of ", width, "x", height, " pixels, more than the limit of ", limit,
           ". HINT: set MINIVLM_MAX_IMAGE_PIXELS to allow larger frames");
}

RgbImage to_rgb(const AVFrame& f, const std::string& path) {
  check_frame_size(f.width, f.height, path);
  std::unique_ptr<SwsContext, SwsFreer> sws(
      sws_getContext(f.width, f.height, static_cast<AVPixelFormat>(f.format), f.width, f.height,
                     AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr));
  MV_CHECK(sws != nullptr, "video ", path, ": cannot convert its pixel format ",
           pix_fmt_name(f.format), " to RGB");
  RgbImage img;
  img.width = f.width;
  img.height = f.height;
  img.pixels.resize(static_cast<size_t>(f.width) * f.height * 3);
  uint8_t* dst[4] = {img.pixels.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {f.width * 3, 0, 0, 0};
  sws_scale(sws.get(), f.data, f.linesize, 0, f.height, dst, dst_stride);
  return img;
}

// Python's float // and % for positive values (float_floordiv / float_mod).
double py_floordiv(double a, double b) {
  const double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0) return std::copysign(0.0, a / b);
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return floordiv;
}

double py_mod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

// Python's int() of a finite double.
int64_t py_int(double x) { return static_cast<int64_t>(std::trunc(x)); }

const char* const kOnes[] = {"zero",    "one",     "two",       "three",    "four",
                             "five",    "six",     "seven",     "eight",    "nine",
                             "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                             "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
const char* const kTens[] = {"",      "",      "twenty",  "thirty", "forty",
                             "fifty", "sixty", "seventy", "eighty", "ninety"};

// 1..999 as num2words writes it.
std::string below_thousand(int n) {
  std::string s;
  if (n >= 100) {
    s = std::string(kOnes[n / 100]) + " hundred";
    n %= 100;
    if (n == 0) return s;
    s += " and ";
  }
  if (n < 20) return s + kOnes[n];
  s += kTens[n / 10];
  if (n % 10) s += std::string("-") + kOnes[n % 10];
  return s;
}

}  // namespace

VideoInfo probe_video(const std::string& path) {
  VideoFile file(path);
  const AVStream& s = file.stream();
  VideoInfo info;
  info.width = s.codecpar->width;
  info.height = s.codecpar->height;
  check_frame_size(info.width, info.height, path);
  AVRational rate = s.avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) rate = s.r_frame_rate;
  MV_CHECK(rate.num > 0 && rate.den > 0, "video ", path, ": no frame rate");
  info.fps = av_q2d(rate);
  MV_CHECK(info.fps <= kMaxVideoFps, "video ", path, ": frame rate ", info.fps,
           " is more than the limit of ", kMaxVideoFps);
  info.total_frames = s.nb_frames;
  MV_CHECK(info.total_frames <= kMaxVideoFrames, "video ", path, ": ", info.total_frames,
           " frames, more than the limit of ", kMaxVideoFrames);
  if (info.total_frames <= 0) {
    info.total_frames =
        file.decode([](int64_t index, const AVFrame&) { return index + 1 <= kMaxVideoFrames; });
    MV_CHECK(info.total_frames <= kMaxVideoFrames, "video ", path, ": more than the limit of ",
             kMaxVideoFrames, " frames");
  }
  MV_CHECK(info.total_frames > 0, "video ", path, ": no frames");
  info.duration = static_cast<double>(info.total_frames) / info.fps;
  return info;
}

std::vector<RgbImage> decode_video_frames(const std::string& path,
                                          const std::vector<int64_t>& indices) {
  for (size_t k = 0; k < indices.size(); ++k)
    MV_CHECK(indices[k] >= 0 && (k == 0 || indices[k] > indices[k - 1]), "video ", path,
             ": frame indices must be ascending and distinct");
  std::vector<RgbImage> frames;
  if (indices.empty()) return frames;
  VideoFile file(path);
  size_t next = 0;
  const int64_t decoded = file.decode([&](int64_t index, const AVFrame& f) {
    if (index == indices[next]) {
      frames.push_back(to_rgb(f, path));
      ++next;
    }
    return next < indices.size();
  });
  MV_CHECK(next == indices.size(), "video ", path, ": frame ", indices[next],
           " requested but the video has only ", decoded, " decodable frames");
  return frames;
}

std::vector<int64_t> sample_frame_indices(const VideoInfo& info, const VideoSampling& sampling) {
  const int64_t total = info.total_frames;
  MV_CHECK(total > 0, "video sampling: the video has no frames");
  // Python's round() rounds half to even, as nearbyint does in the default rounding mode.
  // In double first: a huge (or NaN) estimate must not be converted to an integer.
  const double estimated = std::nearbyint(sampling.fps * info.duration);
  const int64_t desired = std::max<int64_t>(1, estimated < static_cast<double>(sampling.max_frames)
                                                   ? static_cast<int64_t>(estimated)
                                                   : sampling.max_frames);
  int64_t start = 0, end = total - 1;
  if (sampling.skip_secs > 0 && (info.duration - 2 * sampling.skip_secs) >
                                    static_cast<double>(sampling.max_frames) * sampling.fps) {
    start = py_int(sampling.skip_secs * info.fps);
    end = py_int(static_cast<double>(total) - sampling.skip_secs * info.fps);
  }
  start = std::max<int64_t>(0, start);
  end = std::min(end, total - 1);
  if (start >= end) start = 0, end = total - 1;
  // np.linspace(start, end, desired) (float64), then astype(int), then np.unique.
  std::vector<int64_t> out;
  const double div = static_cast<double>(desired - 1);
  const double delta = static_cast<double>(end - start);
  const double step = desired > 1 ? delta / div : 0;
  for (int64_t i = 0; i < desired; ++i) {
    double y;
    if (desired == 1)
      y = static_cast<double>(i) * delta;
    else if (step == 0)
      y = static_cast<double>(i) / div * delta;
    else
      y = static_cast<double>(i) * step;
    y += static_cast<double>(start);
    if (desired > 1 && i == desired - 1) y = static_cast<double>(end);
    out.push_back(py_int(y));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<double> frame_timestamps(const std::vector<int64_t>& indices, double fps) {
  std::vector<double> t;
  t.reserve(indices.size());
  for (int64_t i : indices) t.push_back(static_cast<double>(i) / fps);
  return t;
}

std::string number_words(int64_t n) {
  MV_CHECK(n >= 0 && n < 1000000000000LL, "number_words: ", n, " is out of range");
  if (n == 0) return "zero";
  static const char* const kScales[] = {"", " thousand", " million", " billion"};
  std::vector<std::pair<int, int>> groups;  // (value, scale), highest first
  for (int scale = 3; scale >= 0; --scale) {
    int64_t unit = 1;
    for (int k = 0; k < scale; ++k) unit *= 1000;
    const int g = static_cast<int>(n / unit % 1000);
    if (g) groups.emplace_back(g, scale);
  }
  std::string s;
  for (size_t k = 0; k < groups.size(); ++k) {
    const auto [g, scale] = groups[k];
    if (k > 0) s += scale == 0 && g < 100 ? " and " : ", ";
    s += below_thousand(g) + kScales[scale];
  }
  return s;
}

std::string timedelta_text(int64_t seconds) {
  MV_CHECK(seconds >= 0, "timedelta_text: negative duration ", seconds);
  const int64_t days = seconds / 86400, rest = seconds % 86400;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(rest / 3600),
                static_cast<long long>(rest / 60 % 60), static_cast<long long>(rest % 60));
  if (days == 0) return buf;
  return std::to_string(days) + (days == 1 ? " day, " : " days, ") + buf;
}

std::string video_prompt_text(const VideoInfo& info, const std::vector<int64_t>& indices,
                              const std::string& frame_prompt) {
  std::string s = "You are provided the following series of " +
                  number_words(static_cast<int64_t>(indices.size())) + " frames from a " +
                  timedelta_text(py_int(info.duration)) + " [H:MM:SS] video.\n";
  for (double t : frame_timestamps(indices, info.fps)) {
    char buf[64];
    std::snprintf(buf, sizeof buf,
                  "\nFrame from %02lld:%02lld:", static_cast<long long>(py_int(py_floordiv(t, 60))),
                  static_cast<long long>(py_int(py_mod(t, 60))));
    s += buf;
    s += frame_prompt;
  }
  return s + "\n\n";
}

ProcessedImage VideoProcessor::process(const std::string& path) const {
  const VideoInfo info = probe_video(path);
  const std::vector<int64_t> indices = sample_frame_indices(info, sampling);
  const std::vector<RgbImage> frames = decode_video_frames(path, indices);
  ProcessedImage out;
  const size_t tile = static_cast<size_t>(3 * tile_size * tile_size);
  out.pixels.reserve(frames.size() * tile);
  for (const RgbImage& f : frames) {
    const std::vector<float> t = frame_tile(f);
    MV_CHECK(t.size() == tile, "video ", path, ": a frame became ", t.size(),
             " values, not one tile of ", tile);
    out.pixels.insert(out.pixels.end(), t.begin(), t.end());
  }
  out.tiles = static_cast<int64_t>(frames.size());
  out.prompt.text = video_prompt_text(info, indices, frame_prompt.text);
  out.prompt.image_tokens = frame_prompt.image_tokens * out.tiles;
  out.prompt.video = true;
  return out;
}

ProcessedImages in_placeholder_order(const std::vector<Message>& messages,
                                     std::vector<ProcessedImage> images,
                                     std::vector<ProcessedImage> videos) {
  ProcessedImages out;
  size_t next_image = 0, next_video = 0;
  for (bool video : placeholder_kinds(messages)) {
    if (video && next_video < videos.size())
      out.add(std::move(videos[next_video++]));
    else if (!video && next_image < images.size())
      out.add(std::move(images[next_image++]));
  }
  for (; next_image < images.size(); ++next_image) out.add(std::move(images[next_image]));
  for (; next_video < videos.size(); ++next_video) out.add(std::move(videos[next_video]));
  return out;
}

VideoProcessor VideoProcessor::for_model(const ModelConfig& config,
                                         std::shared_ptr<const ImageProcessor> images) {
  VideoProcessor v;
  v.sampling.fps = config.vision.video_fps;
  v.sampling.max_frames = config.vision.video_max_frames;
  v.tile_size = images->tile_size();
  const std::string type = config.vision.type;
  if (type == "smolvlm") {
    // SmolVLM's frames skip the image splitting: longest edge → vision.video_longest_edge, then
    // image_size², one tile with the single-image prompt (data/processor_smolvlm.cpp).
    v.frame_tile = [config](const RgbImage& frame) {
      return smolvlm_frame_tile(frame, config).pixels;
    };
    v.frame_prompt = smolvlm_image_prompt(0, 0, config.tokens_per_image(), config.image_token);
    return v;
  }
  // Other processors give one tile per image: a frame is processed as an image.
  v.frame_tile = [p = images, type](const RgbImage& frame) {
    ProcessedImage t = p->process(frame);
    MV_CHECK(t.tiles == 1, "video: vision.type ", type, " made ", t.tiles,
             " tiles of a frame; a video frame must be one tile");
    return std::move(t.pixels);
  };
  RgbImage probe;
  probe.width = probe.height = static_cast<int>(images->tile_size());
  probe.pixels.assign(static_cast<size_t>(probe.width) * probe.height * 3, 0);
  v.frame_prompt = images->process(probe).prompt;
  return v;
}

}  // namespace minivlm
