// minivlm bench-model --what train|generate|sgemm: the speed of one workload on a randomly
// initialised model, for scripts/bench/run to set beside PyTorch. Prints one JSON line:
//   train     B×T tokens per step (one image per sample, cut into --tiles tiles, default 1, each
//             its own run of tokens_per_image image tokens with one text token between runs, as
//             SmolVLM's splitting gives; frozen vision tower, SFT trainables = LLM + projector;
//             the trainers' step, train/step.h: AdamW with clipping at 1, one process); seconds
//             of every timed optimizer step, and the loss of every step (warm-up included).
//   generate  batch 1: a text prompt of --prompt tokens prefilled into the KV cache, then
//             --new-tokens greedy decode steps (cpu/decode.h, weights in --decode-dtype, bf16, i8
//             or f32, on --decode-threads, default auto: see docs/performance.md); seconds of every
//             repetition of each phase.
//   sgemm     C = A·B at n×n×n through the GEMM the ops use; GFLOP/s of every repetition.
//   read      a buffer of --mb MiB (default 104: the LLM's fp32 weights) streamed by 1, 2, ..
//             threads; GB/s of every repetition (the bandwidth that bounds decoding).
// train and generate run on --device (cpu, cuda, cuda:N, cuda-emu; default cpu) in --dtype (f32 or
// bf16; default f32). The model is placed there as the trainers do (train/trainer.cpp to_device):
// trainable parameters through the optimizer, which keeps fp32 master weights below f32, the
// frozen ones converted; a back-end that does not compute the dtype is refused with an error.
// Batches stay on the host, as the loader's do. Timings end where a result reaches the host (the
// step's loss, the logits of a decode step), so a device's queue is drained inside each one.
// Every line carries peak_rss_mb (the process's resident high-water mark), the thread count, the
// device and the dtype.
//
// --predict h100|h200 (train or generate on --device cuda-emu): the GPU cost model
// (cuda/cost_model.h, docs/performance.md). After --warmup unrecorded steps (default 1), one step
// is recorded — a training step of --batch × --seq tokens, or one decode step of --batch rows
// (default 1) against a cache of --prompt positions (no prefill) — and the line carries the
// prediction: step seconds, tokens/s, MFU and every kernel's launches, bytes, FLOPs and predicted
// seconds, largest first; a table goes to stderr. Shape-only by default (nothing launched or
// copied: realistic sizes in seconds); --execute runs the recorded step for real.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/node.h"
#include "core/backend.h"
#include "core/device.h"
#include "core/error.h"
#include "core/rng.h"
#include "cuda/cost_model.h"
#include "cpu/gemm.h"
#include "dist/communicator.h"
#include "nn/decode_step.h"
#include "nn/vision_cache.h"
#include "nn/vlm.h"
#include "optim/adamw.h"
#include "tools/command.h"
#include "train/step.h"

namespace minivlm {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

Tensor random_tensor(const Shape& shape, Rng& rng, double std) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = static_cast<float>(rng.normal(0, std));
  return Tensor::from_vector(v, shape);
}

// Random text ids that never hit the image token.
std::vector<int64_t> random_ids(int64_t n, int64_t vocab, int64_t image_token, Rng& rng) {
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t& id : ids) {
    do id = static_cast<int64_t>(rng.uniform() * static_cast<double>(vocab));
    while (id == image_token);
  }
  return ids;
}

// B samples of T tokens: [text, K runs of N image tokens separated by one text token, text],
// supervised after the image; one image of K tiles per sample.
VlmBatch train_batch(const ModelConfig& c, int64_t image_token, int64_t B, int64_t T, int64_t K,
                     Rng& rng) {
  const int64_t N = c.tokens_per_image(), S = c.vision.image_size;
  MV_CHECK(K >= 1, "bench-model: --tiles must be at least 1, got ", K);
  const int64_t image_end = 1 + K * N + (K - 1);  // one past the last image token
  MV_CHECK(T > image_end + 1, "bench-model: --seq ", T, " leaves no text around ", K,
           " tile(s) of ", N, " image tokens (", image_end + 1, " positions taken)");
  std::vector<int64_t> ids = random_ids(B * T, c.llm.vocab_size, image_token, rng);
  std::vector<int64_t> mask(static_cast<size_t>(B * T), 0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t k = 0; k < K; ++k)
      for (int64_t t = 0; t < N; ++t) ids[b * T + 1 + k * (N + 1) + t] = image_token;
    for (int64_t t = image_end; t < T; ++t) mask[b * T + t] = 1;
  }
  VlmBatch batch;
  batch.ids = Tensor::from_vector(ids, {B, T});
  batch.label_mask = Tensor::from_vector(mask, {B, T});
  batch.pixels = random_tensor({B * K, c.vision.num_channels, S, S}, rng, 1.0);
  batch.images_per_sample.assign(static_cast<size_t>(B), 1);
  if (K > 1) batch.tiles_per_image.assign(static_cast<size_t>(B), K);
  return batch;
}

// The trainers' placement (train/trainer.cpp to_device): trainable parameters through the
// optimizer (fp32 masters below f32), frozen ones converted directly.
void place_model(MiniMindVLM& model, AdamW* optim, Device device, DType dtype) {
  if (device.is_cpu() && dtype == DType::f32) return;
  if (optim) optim->to(device, dtype);
  for (NamedTensor& p : model.params()) {
    if (optim && p.tensor.requires_grad()) continue;
    p.tensor.set_data(p.tensor.detach().to(device).to(dtype));
  }
}

// SFT's trainables (LLM and projector; the tower frozen); returns their element count.
int64_t mark_sft_trainables(MiniMindVLM& model) {
  int64_t trainable = 0;
  for (NamedTensor& p : model.params()) {
    const bool llm = p.name.rfind("model.", 0) == 0 || p.name == "lm_head.weight";
    p.tensor.set_requires_grad(llm || p.name.rfind("vision_proj.", 0) == 0);
    if (p.tensor.requires_grad()) trainable += p.tensor.numel();
  }
  return trainable;
}

json bench_train(MiniMindVLM& model, int64_t B, int64_t T, int64_t tiles, Device device,
                 DType dtype, int warmup, int reps, Rng& rng) {
  const int64_t trainable = mark_sft_trainables(model);
  AdamW optim(model.trainable_params(), AdamWConfig{});
  place_model(model, &optim, device, dtype);
  const auto comm = make_single_communicator();
  TrainStep step(model, optim, *comm, 1.0);
  const VlmBatch batch = train_batch(model.config(), model.image_token_id(), B, T, tiles, rng);
  const MicroInput micro[] = {{&batch, batch.supervised_tokens()}};
  std::vector<double> secs, losses;
  double loss = 0;
  for (int i = 0; i < warmup + reps; ++i) {
    const auto t0 = Clock::now();
    loss = step.run(micro, 1e-4).loss;
    if (i >= warmup) secs.push_back(seconds_since(t0));
    losses.push_back(loss);
  }
  return {{"tokens", B * T},
          {"tiles_per_sample", tiles},
          {"trainable_params", trainable},
          {"seconds", secs},
          {"loss", loss},
          {"losses", losses}};
}

json bench_generate(MiniMindVLM& model, int64_t prompt, int64_t new_tokens,
                    DecodeDtype decode_dtype, int decode_threads, Device device, DType dtype,
                    int warmup, int reps, Rng& rng) {
  NoGradGuard no_grad;
  place_model(model, nullptr, device, dtype);
  const LlmConfig& c = model.config().llm;
  const Tensor ids = Tensor::from_vector(
      random_ids(prompt, c.vocab_size, model.image_token_id(), rng), {1, prompt});
  // Built once per model, as infer does at load time; not part of a decode.
  const auto w0 = Clock::now();
  const auto weights = prepare_decode_weights(model.llm, decode_dtype);
  const double weights_seconds = seconds_since(w0);
  std::vector<double> prefill, decode;
  int threads_used = 0;
  for (int i = 0; i < warmup + reps; ++i) {
    KVCache cache = KVCache::allocate_for(model.llm, 1, prompt + new_tokens);
    const auto t0 = Clock::now();
    const Tensor h = model.llm.forward_hidden(model.llm.embed(ids), 0, &cache);
    const std::vector<float> first =
        model.llm.logits(h.narrow(1, prompt - 1, 1).contiguous()).to_float_vector();
    const auto t1 = Clock::now();
    const auto decoder = make_decode_step(model.llm, 1, prompt + new_tokens,
                                          {decode_dtype, decode_threads, weights});
    threads_used = decoder->threads();
    const float* logits = first.data();
    for (int64_t s = 0; s < new_tokens; ++s) {
      const int64_t next = std::max_element(logits, logits + c.vocab_size) - logits;
      logits = decoder->step(&next, cache);
    }
    if (i >= warmup) {
      prefill.push_back(std::chrono::duration<double>(t1 - t0).count());
      decode.push_back(seconds_since(t1));
    }
  }
  return {{"prompt_tokens", prompt},
          {"new_tokens", new_tokens},
          {"decode_fast_path", has_decode_fast_path(model.llm)},
          {"decode_dtype", decode_dtype_name(decode_dtype)},
          {"decode_threads",
           decode_threads == kAutoDecodeThreads ? json("auto") : json(decode_threads)},
          {"decode_threads_used", threads_used},
          {"decode_weights_seconds", weights_seconds},
          {"prefill_seconds", prefill},
          {"decode_seconds", decode}};
}

json bench_sgemm(int64_t n, int reps) {
  std::vector<float> a(static_cast<size_t>(n * n), 0.5f), b(a), c(a);
  std::vector<double> gflops;
  for (int i = 0; i < reps + 1; ++i) {
    const auto t0 = Clock::now();
    cpu::gemm<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    if (i > 0) gflops.push_back(2.0 * static_cast<double>(n * n * n) / seconds_since(t0) / 1e9);
  }
  return {{"n", n}, {"gflops", gflops}};
}

// Streams a buffer of `mb` MiB once per repetition with 1, 2, .. threads (each its own slice):
// the read bandwidth that bounds decoding, which reads every weight once per token.
json bench_read(int64_t mb, int reps) {
  const int64_t n = (mb << 20) / static_cast<int64_t>(sizeof(float));
  std::vector<float> buf(static_cast<size_t>(n), 1.0f);
  json out = {{"mb", mb}};
  for (int threads = 1; threads <= omp_get_max_threads(); ++threads) {
    std::vector<double> gbs;
    double total = 0;
    for (int i = 0; i < reps + 1; ++i) {
      const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
      {
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        const float* p = buf.data() + n * t / nt;
        const int64_t len = n * (t + 1) / nt - n * t / nt;
        // Four independent 16-lane sums, so that the adds keep up with the loads.
        float acc[4][16] = {};
        int64_t j = 0;
        for (; j + 64 <= len; j += 64)
          for (int a = 0; a < 4; ++a)
#pragma omp simd
            for (int l = 0; l < 16; ++l) acc[a][l] += p[j + a * 16 + l];
        for (; j < len; ++j) acc[0][0] += p[j];
        for (const auto& lanes : acc)
          for (const float v : lanes) total += v;
      }
      if (i > 0) gbs.push_back(static_cast<double>(n) * sizeof(float) / seconds_since(t0) / 1e9);
    }
    MV_CHECK(total > 0, "bench-model: the read probe summed nothing");
    out["gb_per_s_" + std::to_string(threads) + "_threads"] = gbs;
  }
  return out;
}

// The cost model's prediction of the recorded launches, as JSON; a table on stderr.
json prediction_json(const std::vector<cuda::CostRecord>& records, const std::string& gpu,
                     int64_t tokens, const std::string& what) {
  const cuda::GpuSpec& spec = cuda::gpu_spec(gpu);
  const cuda::StepPrediction p = cuda::predict(records, spec);
  json kernels = json::array();
  std::fprintf(stderr,
               "predicted %s step on %s: %.3f ms, %.0f tokens/s, MFU %.1f%%, %lld launches\n",
               what.c_str(), gpu.c_str(), p.seconds * 1e3, tokens / p.seconds, 100 * p.mfu,
               static_cast<long long>(p.launches));
  std::fprintf(stderr, "  %-34s %8s %12s %12s %10s %6s %6s\n", "kernel", "launches", "MB", "GFLOP",
               "ms", "share", "membw");
  for (const cuda::KernelTime& k : p.kernels) {
    kernels.push_back({{"name", k.name},
                       {"launches", k.launches},
                       {"bytes", k.bytes},
                       {"flops", k.flops},
                       {"model_flops", k.model_flops},
                       {"seconds", k.seconds},
                       {"memory_bound_seconds", k.memory_seconds}});
    std::fprintf(stderr, "  %-34s %8lld %12.1f %12.2f %10.4f %5.1f%% %5.0f%%\n", k.name.c_str(),
                 static_cast<long long>(k.launches), k.bytes / 1e6, k.flops / 1e9, k.seconds * 1e3,
                 100 * k.seconds / p.seconds, 100 * k.memory_seconds / k.seconds);
  }
  return {{"gpu", spec.name},
          {"hbm_bytes_per_s", spec.hbm_bytes_per_s},
          {"tensor_flops", spec.tensor_flops},
          {"simt_flops", spec.simt_flops},
          {"launch_seconds", spec.launch_seconds},
          {"step_seconds", p.seconds},
          {"tokens", tokens},
          {"tokens_per_s", static_cast<double>(tokens) / p.seconds},
          {"mfu", p.mfu},
          {"launches", p.launches},
          {"bytes", p.bytes},
          {"flops", p.flops},
          {"model_flops", p.model_flops},
          {"kernels", kernels}};
}

// --predict: warm-up steps unrecorded, then one recorded step (see the top of this file).
json predict_train(MiniMindVLM& model, int64_t B, int64_t T, int64_t tiles, Device device,
                   DType dtype, int warmup, bool execute, const std::string& gpu, Rng& rng) {
  mark_sft_trainables(model);
  cuda::CostRecording recording(execute);
  AdamW optim(model.trainable_params(), AdamWConfig{});
  place_model(model, &optim, device, dtype);
  const auto comm = make_single_communicator();
  TrainStep step(model, optim, *comm, 1.0);
  const VlmBatch batch = train_batch(model.config(), model.image_token_id(), B, T, tiles, rng);
  const MicroInput micro[] = {{&batch, batch.supervised_tokens()}};
  for (int i = 0; i < warmup; ++i) step.run(micro, 1e-4);
  recording.take();
  const auto t0 = Clock::now();
  const double loss = step.run(micro, 1e-4).loss;
  const double secs = seconds_since(t0);
  json out = {{"tokens", B * T},           {"batch", B},          {"seq", T},
              {"tiles_per_sample", tiles}, {"executed", execute}, {"recorded_seconds", secs}};
  if (execute) out["loss"] = loss;
  out["predict"] = prediction_json(recording.take(), gpu, B * T, "train");
  return out;
}

json predict_decode(MiniMindVLM& model, int64_t B, int64_t context, Device device, DType dtype,
                    int warmup, bool execute, const std::string& gpu) {
  NoGradGuard no_grad;
  cuda::CostRecording recording(execute);
  place_model(model, nullptr, device, dtype);
  KVCache cache = KVCache::allocate_for(model.llm, B, context + 1);
  const auto decoder = make_decode_step(model.llm, B, context + 1, {});
  const std::vector<int64_t> ids(static_cast<size_t>(B), 1);
  for (int i = 0; i <= warmup; ++i) {
    if (i == warmup) recording.take();
    cache.length = context;  // the step attends to `context` cached positions and its own
    decoder->step(ids.data(), cache);
  }
  json out = {{"tokens", B}, {"batch", B}, {"context", context}, {"executed", execute}};
  out["predict"] = prediction_json(recording.take(), gpu, B, "decode");
  return out;
}

}  // namespace

MINIVLM_COMMAND("bench-model",
                "training / prefill / decode / sgemm speed on a random model; read bandwidth") {
  cli::Args a(args,
              {{"what", true},
               {"config", true},
               {"batch", true},
               {"seq", true},
               {"prompt", true},
               {"new-tokens", true},
               {"warmup", true},
               {"reps", true},
               {"n", true},
               {"mb", true},
               {"decode-dtype", true},
               {"decode-threads", true},
               {"vision-cache-mb", true},
               {"tiles", true},
               {"device", true},
               {"dtype", true},
               {"predict", true},
               {"execute", false}},
              "bench-model");
  const std::string what = a.get("what");
  const int warmup = a.get_int("warmup", 1), reps = a.get_int("reps", 5);
  MV_CHECK(reps > 0 && warmup >= 0, "bench-model: --reps must be positive and --warmup >= 0");
  json out;
  const Device device = parse_device(a.get("device", "cpu"));
  const std::string dtype_arg = a.get("dtype", "f32");
  MV_CHECK(dtype_arg == "f32" || dtype_arg == "fp32" || dtype_arg == "bf16",
           "bench-model: --dtype '", dtype_arg, "'; valid: f32, bf16");
  const DType dtype = dtype_arg == "bf16" ? DType::bf16 : DType::f32;
  if (what == "sgemm") {
    out = bench_sgemm(a.get_int("n", 1024), reps);
  } else if (what == "read") {
    out = bench_read(a.get_int("mb", 104), reps);
  } else {
    MV_CHECK(what == "train" || what == "generate", "bench-model: unknown --what '", what,
             "'; valid: train, generate, sgemm, read");
    MV_CHECK(device_available(device.type), "bench-model: --device ", device.str(), ": ",
             device_summary(device.type));
    MV_CHECK(dtype == DType::f32 || backend_for(device).computes(dtype), "bench-model: --dtype ",
             dtype_arg, ": the ", backend_for(device).name(), " back-end does not compute in it",
             " (the trainers refuse --dtype ", dtype_arg, " on --device ", device.str(), " too)");
    if (a.has("predict")) {              // refused before the model is built
      cuda::gpu_spec(a.get("predict"));  // names the valid ones
      MV_CHECK(device.type == DeviceType::cuda_emu,
               "bench-model: --predict needs --device cuda-emu",
               " (the cost model records the emulator's launches), got ", device.str());
    }
    const ModelConfig config = ModelConfig::from_file(a.get("config"));
    const int64_t image_token = config.llm.vocab_size - 1;
    MiniMindVLM model(config, image_token);
    model.init(1234);
    const int64_t cache_mb = a.get_int("vision-cache-mb", 0);
    if (cache_mb > 0)
      model.set_vision_cache(
          std::make_shared<VisionFeatureCache>(static_cast<size_t>(cache_mb) << 20));
    Rng rng(7);
    if (a.has("predict")) {
      const std::string gpu = a.get("predict");
      if (what == "train")
        out =
            predict_train(model, a.get_int("batch", 4), a.get_int("seq", 256),
                          a.get_int("tiles", 1), device, dtype, warmup, a.has("execute"), gpu, rng);
      else
        out = predict_decode(model, a.get_int("batch", 1), a.get_int("prompt", 256), device, dtype,
                             warmup, a.has("execute"), gpu);
    } else if (what == "train")
      out = bench_train(model, a.get_int("batch", 4), a.get_int("seq", 256), a.get_int("tiles", 1),
                        device, dtype, warmup, reps, rng);
    else
      out = bench_generate(model, a.get_int("prompt", 256), a.get_int("new-tokens", 128),
                           parse_decode_dtype(a.get("decode-dtype", "bf16")),
                           parse_decode_threads(a.get("decode-threads", "auto")), device, dtype,
                           warmup, reps, rng);
    out["device"] = device.str();
    out["dtype"] = dtype_name(dtype);
  }
  out["what"] = what;
  out["threads"] = omp_get_max_threads();
  out["peak_rss_mb"] = peak_rss_mb();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace minivlm
