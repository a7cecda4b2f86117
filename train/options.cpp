#include "train/options.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "data/dataset.h"
#include "data/record_source.h"
#include "core/json_file.h"

namespace minivlm {

using nlohmann::json;

json TrainOptions::to_json() const {
  return json{{"model", model},
              {"data", data},
              {"images", images},
              {"out", out},
              {"eval", eval},
              {"eval_images", eval_images},
              {"resume", resume},
              {"config", config},
              {"epochs", epochs},
              {"max_steps", max_steps},
              {"batch_size", batch_size},
              {"grad_accum", grad_accum},
              {"warmup_steps", warmup_steps},
              {"lr", lr},
              {"min_lr_ratio", min_lr_ratio},
              {"weight_decay", weight_decay},
              {"grad_clip", grad_clip},
              {"max_seq_len", max_seq_len},
              {"seed", seed},
              {"device", device},
              {"dtype", dtype},
              {"train", train},
              {"log_every", log_every},
              {"save_every", save_every},
              {"keep_checkpoints", keep_checkpoints},
              {"eval_every", eval_every},
              {"num_workers", num_workers},
              {"max_bad_fraction", max_bad_fraction},
              {"max_nonfinite_steps", max_nonfinite_steps},
              {"eval_batch_size", eval_batch_size},
              {"vision_cache_mb", vision_cache_mb},
              {"over_long", over_long},
              {"allow_images_outside", allow_images_outside},
              {"system_prompt_prob", system_prompt_prob},
              {"keep_empty_think", keep_empty_think},
              {"ignore_unreferenced_images", ignore_unreferenced_images},
              {"pack", pack}};
}

namespace {

void from_json_checked(TrainOptions& o, const json& j) {
  auto get = [&](const char* k, auto& field) {
    if (j.contains(k)) field = j.at(k).get<std::decay_t<decltype(field)>>();
  };
  get("model", o.model);
  get("data", o.data);
  get("images", o.images);
  get("out", o.out);
  get("eval", o.eval);
  get("eval_images", o.eval_images);
  get("resume", o.resume);
  get("config", o.config);
  get("epochs", o.epochs);
  get("max_steps", o.max_steps);
  get("batch_size", o.batch_size);
  get("grad_accum", o.grad_accum);
  get("warmup_steps", o.warmup_steps);
  get("lr", o.lr);
  get("min_lr_ratio", o.min_lr_ratio);
  get("weight_decay", o.weight_decay);
  get("grad_clip", o.grad_clip);
  get("max_seq_len", o.max_seq_len);
  get("seed", o.seed);
  get("device", o.device);
  get("dtype", o.dtype);
  get("train", o.train);
  get("log_every", o.log_every);
  get("save_every", o.save_every);
  get("keep_checkpoints", o.keep_checkpoints);
  get("eval_every", o.eval_every);
  get("num_workers", o.num_workers);
  get("max_bad_fraction", o.max_bad_fraction);
  get("max_nonfinite_steps", o.max_nonfinite_steps);
  get("eval_batch_size", o.eval_batch_size);
  get("vision_cache_mb", o.vision_cache_mb);
  get("over_long", o.over_long);
  get("allow_images_outside", o.allow_images_outside);
  get("system_prompt_prob", o.system_prompt_prob);
  get("keep_empty_think", o.keep_empty_think);
  get("ignore_unreferenced_images", o.ignore_unreferenced_images);
  get("pack", o.pack);
}

std::string valid_list(const json& defaults) {
  std::string s;
  for (const auto& [k, v] : defaults.items()) {
    if (!s.empty()) s += ", ";
    s += "--";
    s += k;
  }
  return s;
}

// A flag's text converted to the JSON type of the option's default.
json typed_value(const std::string& key, const std::string& text, const json& like) {
  try {
    size_t pos = 0;
    if (like.is_number_integer()) {
      const long long v = std::stoll(text, &pos);
      if (pos == text.size()) return v;
    } else if (like.is_number()) {
      const double v = std::stod(text, &pos);
      if (pos == text.size()) return v;
    } else {
      return text;
    }
  } catch (const std::exception&) {
  }
  MV_FAIL("option --", key, " expects ", like.is_number_integer() ? "an integer" : "a number",
          ", got '", text, "'");
}

void validate(const TrainOptions& o) {
  MV_CHECK(o.batch_size >= 1, "batch_size must be >= 1, got ", o.batch_size);
  MV_CHECK(o.grad_accum >= 1, "grad_accum must be >= 1, got ", o.grad_accum);
  MV_CHECK(o.epochs >= 1 || o.max_steps > 0, "epochs must be >= 1 (or set max_steps)");
  MV_CHECK(o.lr > 0, "lr must be positive, got ", o.lr);
  MV_CHECK(o.vision_cache_mb >= 0, "vision_cache_mb must be >= 0, got ", o.vision_cache_mb);
  MV_CHECK(o.max_seq_len >= 8, "max_seq_len must be >= 8, got ", o.max_seq_len);
  MV_CHECK(o.train == "projector" || o.train == "projector+last" || o.train == "all",
           "train must be projector, projector+last or all, got '", o.train, "'");
  MV_CHECK(o.dtype == "fp32" || o.dtype == "bf16", "dtype must be fp32 or bf16, got '", o.dtype,
           "'");
  MV_CHECK(o.log_every >= 1, "log_every must be >= 1");
  MV_CHECK(o.max_bad_fraction >= 0 && o.max_bad_fraction <= 1,
           "max_bad_fraction must be in [0, 1]");
  MV_CHECK(o.epochs >= 0, "epochs must be >= 0, got ", o.epochs);
  MV_CHECK(o.max_steps >= 0, "max_steps must be >= 0 (0: run the epochs), got ", o.max_steps);
  MV_CHECK(o.warmup_steps >= 0, "warmup_steps must be >= 0, got ", o.warmup_steps);
  MV_CHECK(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1, "min_lr_ratio must be in [0, 1], got ",
           o.min_lr_ratio);
  MV_CHECK(o.weight_decay >= 0, "weight_decay must be >= 0, got ", o.weight_decay);
  MV_CHECK(o.grad_clip >= 0, "grad_clip must be >= 0 (0: no clipping), got ", o.grad_clip);
  MV_CHECK(o.save_every >= 0, "save_every must be >= 0 (0: no periodic checkpoints), got ",
           o.save_every);
  MV_CHECK(o.keep_checkpoints >= 0, "keep_checkpoints must be >= 0 (0: keep every one), got ",
           o.keep_checkpoints);
  MV_CHECK(o.eval_every >= 0, "eval_every must be >= 0, got ", o.eval_every);
  MV_CHECK(o.num_workers >= 0, "num_workers must be >= 0, got ", o.num_workers);
  MV_CHECK(o.max_nonfinite_steps >= 1, "max_nonfinite_steps must be >= 1, got ",
           o.max_nonfinite_steps);
  MV_CHECK(o.eval_batch_size >= 1, "eval_batch_size must be >= 1, got ", o.eval_batch_size);
  MV_CHECK(o.over_long == "skip" || o.over_long == "truncate",
           "over_long must be skip or truncate, got '", o.over_long, "'");
  MV_CHECK(o.allow_images_outside == 0 || o.allow_images_outside == 1,
           "allow_images_outside must be 0 or 1, got ", o.allow_images_outside);
  MV_CHECK(o.ignore_unreferenced_images == 0 || o.ignore_unreferenced_images == 1,
           "ignore_unreferenced_images must be 0 or 1, got ", o.ignore_unreferenced_images);
  MV_CHECK(o.pack == 0 || o.pack == 1, "pack must be 0 or 1, got ", o.pack);
  MV_CHECK(o.system_prompt_prob >= 0 && o.system_prompt_prob <= 1,
           "system_prompt_prob must be in [0, 1], got ", o.system_prompt_prob);
  MV_CHECK(o.keep_empty_think >= 0 && o.keep_empty_think <= 1,
           "keep_empty_think must be in [0, 1], got ", o.keep_empty_think);
}

}  // namespace

void apply_options(TrainOptions& opts, const json& j, const std::string& origin) {
  MV_CHECK(j.is_object(), origin, ": options must be a JSON object");
  const json defaults = opts.to_json();
  json merged = defaults;
  for (const auto& [k, v] : j.items()) {
    std::string key = k;
    for (char& c : key)
      if (c == '-') c = '_';
    MV_CHECK(defaults.contains(key), origin, ": unknown option '", k,
             "' (valid options: ", valid_list(defaults), ")");
    const json& like = defaults.at(key);
    const bool ok = (like.is_number_integer() && v.is_number_integer()) ||
                    (like.is_number_float() && v.is_number()) ||
                    (like.is_string() && v.is_string());
    MV_CHECK(ok, origin, ": option '", k, "' has the wrong type: ", v.dump(), " (default ",
             like.dump(), ")");
    merged[key] = v;
  }
  from_json_checked(opts, merged);
}

void set_data_options(const TrainOptions& opts, bool augment, SampleFormat& format) {
  format.truncate_over_long = opts.over_long == "truncate";
  format.allow_images_outside = opts.allow_images_outside != 0;
  format.ignore_unreferenced_images = opts.ignore_unreferenced_images != 0;
  format.seed = static_cast<uint64_t>(opts.seed);
  format.system_prompt_prob = augment ? opts.system_prompt_prob : 0.0;
  format.keep_empty_think = augment ? opts.keep_empty_think : 1.0;
}

TrainOptions default_options(Stage stage) {
  TrainOptions o;
  if (stage == Stage::pretrain) {
    o.lr = 4e-4;
    o.train = "projector";
    o.max_seq_len = 640;
    o.batch_size = 16;
  } else {
    o.lr = 5e-6;
    o.train = "all";
    o.max_seq_len = 1536;
    o.batch_size = 4;
  }
  return o;
}

TrainOptions parse_train_options(Stage stage, const std::vector<std::string>& argv) {
  TrainOptions opts = default_options(stage);
  const json defaults = opts.to_json();
  json flags = json::object();
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("options (--key value or --key=value; defaults of this stage):\n");
      for (const auto& [k, v] : defaults.items())
        std::printf("  --%s %s\n", k.c_str(), v.dump().c_str());
      std::exit(0);
    }
    MV_CHECK(a.rfind("--", 0) == 0, "unexpected argument '", a,
             "' (options are --key value; valid options: ", valid_list(defaults), ")");
    std::string key = a.substr(2), value;
    const size_t eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key.resize(eq);
    } else if ((key == "pack") && (i + 1 == argv.size() || argv[i + 1].rfind("--", 0) == 0)) {
      value = "1";  // a bare --pack turns packing on
    } else {
      MV_CHECK(i + 1 < argv.size(), "option --", key, " needs a value");
      value = argv[++i];
    }
    for (char& c : key)
      if (c == '-') c = '_';
    MV_CHECK(defaults.contains(key), "unknown option --", a.substr(2),
             " (valid options: ", valid_list(defaults), ")");
    flags[key] = typed_value(key, value, defaults.at(key));
  }
  // The config file first, then the flags on top of it.
  if (flags.contains("config")) {
    const std::string path = flags.at("config").get<std::string>();
    apply_options(opts, read_json_file(path, "config"), path);
  }
  apply_options(opts, flags, "command line");
  for (const char* required : {"model", "data", "images", "out"})
    // A parquet file carries its images: --images is needed only for JSONL.
    MV_CHECK(!opts.to_json().at(required).get<std::string>().empty() ||
                 (std::string(required) == "images" && is_parquet_path(opts.data)),
             "missing required option --", required);
  if (opts.eval_images.empty()) opts.eval_images = opts.images;
  validate(opts);
  return opts;
}

}  // namespace minivlm
