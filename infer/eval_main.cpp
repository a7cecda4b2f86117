// eval (SPEC §6): held-out loss of a model on a JSONL or parquet set. Writes OUT/metrics.json
// (samples, skipped, tokens, loss, ppl; with --generate also exact_match and token_f1) and
// OUT/predictions.jsonl (one line per record: index, loss over its supervised tokens, tokens; with
// --generate the greedy prediction and the reference). Under mpirun the records are split across
// ranks. --device cuda|cuda-emu computes on the CUDA back-end (infer/device_model.h), in bf16
// (weights, activations, KV cache; the loss accumulated in fp32) by default, in fp32 with
// --decode-dtype f32; the CPU computes in fp32 and takes only --decode-dtype f32.
// --over-long skip|truncate, --allow-images-outside and --ignore-unreferenced-images are the data
// options of training (SPEC §4.2, §4.4); MiniMind-V's random ones do not apply to evaluation.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/process_env.h"
#include "data/record_source.h"
#include "dist/communicator.h"
#include "infer/device_model.h"
#include "infer/evaluate.h"
#include "io/atomic_file.h"
#include "io/model_io.h"
#include "text/tokenizer.h"
#include "core/args.h"

namespace minivlm {
namespace {

int eval_main(Communicator& comm, const std::vector<std::string>& argv) {
  cli::Args a(argv,
              {{"model", true},
               {"data", true},
               {"images", true},
               {"out", true},
               {"batch-size", true},
               {"max-samples", true},
               {"max-seq-len", true},
               {"blank-images", false},
               {"device", true},
               {"decode-dtype", true},
               {"generate", false},
               {"max-new-tokens", true},
               {"over-long", true},
               {"allow-images-outside", false},
               {"ignore-unreferenced-images", false}},
              "eval");
  const LoadedModel m = load_model_dir(a.get("model"));
  const InferencePlacement placed = place_for_inference(*m.model, a, "eval");
  MV_CHECK(!placed.device.is_cpu() || a.get("decode-dtype", "f32") == "f32",
           "eval: --decode-dtype ", a.get("decode-dtype", "f32"), " on --device ",
           placed.device.str(),
           ": the CPU evaluates in f32 (bf16, the default on cuda and cuda-emu, is for a device)");
  SampleFormat fmt = SampleFormat::for_model(m.config, a.get_int("max-seq-len", 2048));
  apply_data_flags(a, "eval", fmt);
  // A parquet file carries its images, so --images is needed only for JSONL.
  const std::string images = is_parquet_path(a.get("data")) ? a.get("images", "") : a.get("images");
  const Dataset data(a.get("data"), images, *m.tokenizer, fmt);
  EvalOptions opt;
  opt.batch_size = a.get_int("batch-size", 8);
  opt.max_samples = a.get_int("max-samples", 0);
  opt.blank_images = a.has("blank-images");
  const EvalResult r = evaluate_loss(*m.model, data, comm, opt);
  GenerationEvalResult g;
  if (a.has("generate")) {
    GenerationEvalOptions go;
    go.batch_size = a.get_int("batch-size", 16);
    go.max_new_tokens = a.get_int("max-new-tokens", 64);
    go.max_samples = opt.max_samples;
    go.blank_images = opt.blank_images;
    g = evaluate_generation(*m.model, *m.tokenizer, data, comm, go);
  }
  if (comm.is_main()) {
    const std::string out = a.get("out");
    std::filesystem::create_directories(out);
    nlohmann::json metrics = {{"samples", r.samples},
                              {"skipped", r.skipped},
                              {"tokens", r.tokens},
                              {"loss", r.loss()},
                              {"ppl", r.ppl()},
                              {"device", placed.device.str()},
                              {"dtype", dtype_name(placed.dtype)}};
    if (a.has("generate")) {
      metrics["exact_match"] = g.exact_match;
      metrics["token_f1"] = g.token_f1;
    }
    write_file_atomic(out + "/metrics.json", metrics.dump(2) + "\n");
    std::string lines;
    for (const SampleEval& s : r.rows) {
      nlohmann::json j = {{"index", s.index}};
      if (s.skipped) {
        j["skipped"] = s.skip_reason;
      } else {
        j["loss"] = s.mean_loss();
        j["tokens"] = s.tokens;
      }
      if (a.has("generate") && !g.rows[static_cast<size_t>(s.index)].skipped) {
        const GenerationEval& ge = g.rows[static_cast<size_t>(s.index)];
        j["prediction"] = ge.prediction;
        j["reference"] = ge.reference;
        j["exact_match"] = ge.exact;
        j["token_f1"] = ge.f1;
      }
      lines += j.dump() + "\n";
    }
    write_file_atomic(out + "/predictions.jsonl", lines);
    if (r.samples > 0)
      std::printf("eval: %lld samples (%lld skipped), %lld tokens, loss %.4f, ppl %.3f",
                  static_cast<long long>(r.samples), static_cast<long long>(r.skipped),
                  static_cast<long long>(r.tokens), r.loss(), r.ppl());
    if (r.samples > 0 && a.has("generate"))
      std::printf(", exact_match %.4f, token_f1 %.4f", g.exact_match, g.token_f1);
    if (r.samples > 0 && !placed.device.is_cpu())
      std::printf(" [%s, %s]", placed.device.str().c_str(), dtype_name(placed.dtype));
    if (r.samples > 0) std::printf("%s\n", opt.blank_images ? " [blank images]" : "");
  }
  comm.barrier();
  // No usable sample has no loss: an error (the reasons are in predictions.jsonl), not a score.
  MV_CHECK(r.samples > 0, "eval: ", a.get("data"), " has no usable sample (", r.skipped,
           " skipped; the reasons are in ", a.get("out"), "/predictions.jsonl)");
  return 0;
}

}  // namespace
}  // namespace minivlm

int main(int argc, char** argv) {
  minivlm::ensure_passive_openmp_wait(argv);
  auto comm = minivlm::make_communicator();
  try {
    return minivlm::eval_main(*comm, std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    if (comm->world_size() > 1) comm->abort(std::string("eval: ") + e.what());
    std::fprintf(stderr, "eval: error: %s\n", e.what());
    return 1;
  }
}
