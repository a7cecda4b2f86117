#include "train/trainer.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include "core/backend.h"
#include "data/loader.h"
#include "dist/communicator.h"
#include "infer/evaluate.h"
#include "io/atomic_file.h"
#include "io/model_io.h"
#include "optim/adamw.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/progress.h"
#include "train/run_lock.h"
#include "train/step.h"
#include "train/stop_signals.h"

namespace minivlm {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// requires_grad per the stage's policy; the vision tower is always frozen.
void apply_freeze_policy(const MiniMindVLM& model, const std::string& train) {
  const std::string last =
      "model.layers." + std::to_string(model.config().llm.num_hidden_layers - 1) + ".";
  for (NamedTensor& p : model.params()) {
    bool trainable = p.name.rfind("vision_proj.", 0) == 0;
    if (train == "all")
      trainable = trainable || p.name.rfind("model.", 0) == 0 || p.name == "lm_head.weight";
    if (train == "projector+last") trainable = trainable || p.name.rfind(last, 0) == 0;
    p.tensor.set_requires_grad(trainable);
  }
}

struct Run {
  const StopSignals* stop = nullptr;
  std::unique_ptr<RunLock> lock;  // rank 0's, held until the run ends
  TrainOptions opt;
  std::unique_ptr<Communicator> comm;
  LoadedModel m;
  std::unique_ptr<Dataset> train_set, eval_set;
  std::unique_ptr<Loader> loader;
  std::unique_ptr<AdamW> optim;
  std::unique_ptr<TrainStep> train_step;  // made once the model is on its device
  int64_t step = 0, total_steps = 0;
  int64_t nonfinite_in_row = 0, nonfinite_total = 0;
  int64_t tokens_total = 0;
  Rng rng;
  Device device;             // where the model computes
  DType dtype = DType::f32;  // its parameters' and activations' storage
  // The fp32 values of frozen parameters stored narrower on the device (checkpoints keep them).
  std::map<std::string, Tensor> frozen_fp32;
};

void log(const Run& r, const std::string& line) {
  if (r.comm->is_main()) std::fprintf(stderr, "%s\n", line.c_str());
}

void append_metrics(const Run& r, const json& j) {
  if (!r.comm->is_main()) return;
  std::ofstream f(fs::path(r.opt.out) / "metrics.jsonl", std::ios::app);
  f << j.dump() << "\n";
}

json trainer_state(Run& r) {
  // Every rank's loader and RNG state (each rank restores its own).
  json per_rank = json::array();
  const json mine = {{"loader", r.loader->state().to_json()}, {"rng", r.rng.state()}};
  for (const std::string& s : r.comm->all_gather(mine.dump())) per_rank.push_back(json::parse(s));
  return json{{"step", r.step},
              {"epoch", r.loader->state().epoch},
              {"total_steps", r.total_steps},
              {"world_size", r.comm->world_size()},
              {"global_batch", r.loader->global_batch()},
              {"lr", r.opt.lr},
              {"warmup_steps", r.opt.warmup_steps},
              {"min_lr_ratio", r.opt.min_lr_ratio},
              {"optimizer_steps", r.optim->steps()},
              {"nonfinite_steps", r.nonfinite_total},
              {"tokens", r.tokens_total},
              {"ranks", per_rank},
              {"options", r.opt.to_json()}};
}

// Every model tensor at full precision: master weights of trainable parameters, the fp32 values
// of frozen ones, so a checkpoint holds the same tensors whatever the device and dtype.
std::vector<std::pair<std::string, Tensor>> fp32_weights(const Run& r) {
  std::map<std::string, Tensor> masters;
  for (size_t i = 0; i < r.optim->params().size(); ++i)
    masters[r.optim->params()[i].name] = r.optim->master(i);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const NamedTensor& p : r.m.model->params()) {
    Tensor t = p.tensor;
    if (const auto m = masters.find(p.name); m != masters.end()) t = m->second;
    if (const auto f = r.frozen_fp32.find(p.name); f != r.frozen_fp32.end()) t = f->second;
    out.emplace_back(p.name, t.detach());
  }
  return out;
}

void save(Run& r) {
  const json state = trainer_state(r);  // collective: every rank takes part
  if (r.comm->is_main()) {
    CheckpointData d;
    // fp32 weights in the layout of the model the run started from (a Hugging Face SmolVLM
    // checkpoint is a directory transformers loads, its files beside).
    d.model = weights_in_source_layout(r.m.source, fp32_weights(r));
    d.files = source_files(r.m.source);
    d.optimizer = r.optim->state_tensors();
    d.state = state;
    const std::string dir = save_checkpoint(r.opt.out, r.step, d, r.opt.keep_checkpoints);
    std::fprintf(stderr, "saved checkpoint %s\n", dir.c_str());
  }
  r.comm->barrier();
}

void resume(Run& r, const std::string& dir) {
  const LoadedCheckpoint c = load_checkpoint(dir);
  // Every value read below is present and in range, or the error names the key.
  check_trainer_state(c.state, dir + "/trainer_state.json");
  load_weights_in_source_layout(*r.m.model, r.m.source, c.model_path);
  r.optim->load_state(c.optimizer, c.state.at("optimizer_steps").get<int64_t>());
  r.step = c.state.at("step").get<int64_t>();
  r.nonfinite_total = c.state.at("nonfinite_steps").get<int64_t>();
  r.tokens_total = c.state.at("tokens").get<int64_t>();
  const json& ranks = c.state.at("ranks");
  const int saved_world = c.state.at("world_size").get<int>();
  if (saved_world == r.comm->world_size()) {
    const json& mine = ranks.at(static_cast<size_t>(r.comm->rank()));
    r.loader->seek(LoaderState::from_json(mine.at("loader")));
    r.rng.set_state(mine.at("rng").get<std::string>());
  } else {
    // Another world size: continue at the same sample position of the epoch (documented in README).
    LoaderState s = LoaderState::from_json(ranks.at(0).at("loader"));
    const int64_t samples = s.step_in_epoch * c.state.at("global_batch").get<int64_t>();
    s.step_in_epoch = samples / r.loader->global_batch();
    s.global_batch = r.loader->global_batch();
    r.loader->seek(s);
    log(r, "resuming a run of " + std::to_string(saved_world) + " processes on " +
               std::to_string(r.comm->world_size()) + ": continuing at sample " +
               std::to_string(samples) + " of epoch " + std::to_string(s.epoch));
  }
  log(r, "resumed from " + dir + " at step " + std::to_string(r.step));
}

void print_startup(const Run& r) {
  if (!r.comm->is_main()) return;
  int64_t total = 0, trainable = 0, vision = 0;
  for (const NamedTensor& p : r.m.model->params()) {
    total += p.tensor.numel();
    if (p.tensor.requires_grad()) trainable += p.tensor.numel();
    if (p.name.rfind("vision_encoder.", 0) == 0) vision += p.tensor.numel();
  }
  const double mb = 1.0 / (1 << 20);
  std::fprintf(stderr,
               "+-----------------------+----------------------------------------------+\n");
  auto row = [](const std::string& k, const std::string& v) {
    std::fprintf(stderr, "| %-21s | %-44s |\n", k.c_str(), v.c_str());
  };
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.2fM (vision %.2fM, frozen)", total / 1e6, vision / 1e6);
  row("parameters", buf);
  std::snprintf(buf, sizeof buf, "%.3fM", trainable / 1e6);
  row("trainable", buf);
  std::snprintf(buf, sizeof buf, "weights %.1f MiB, grads+AdamW %.1f MiB", 4.0 * total * mb,
                12.0 * trainable * mb);
  row("memory plan (fp32)", buf);
  row("processes", std::to_string(r.comm->world_size()) + " (" + r.comm->name() + ")");
  row("global batch", std::to_string(r.loader->global_batch()) + " samples/step");
  row("steps", std::to_string(r.total_steps) + " (" + std::to_string(r.loader->steps_per_epoch()) +
                   " per epoch)");
  const json options = r.opt.to_json();
  for (const auto& [k, v] : options.items())
    row(k, v.is_string() ? v.get<std::string>() : v.dump());
  std::fprintf(stderr,
               "+-----------------------+----------------------------------------------+\n");
}

void run_eval(Run& r) {
  if (!r.eval_set) return;
  EvalOptions eo;
  eo.batch_size = r.opt.eval_batch_size;
  const EvalResult e = evaluate_loss(*r.m.model, *r.eval_set, *r.comm, eo);
  append_metrics(r, {{"step", r.step},
                     {"eval_loss", e.loss()},
                     {"eval_ppl", e.ppl()},
                     {"eval_samples", e.samples}});
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "eval at step %lld: loss %.4f ppl %.2f over %lld samples (%lld skipped)",
                static_cast<long long>(r.step), e.loss(), e.ppl(),
                static_cast<long long>(e.samples), static_cast<long long>(e.skipped));
  log(r, buf);
}

// Moves the model to the run's device and dtype once its weights and optimizer state are final on
// the host (after a resume): trainable parameters through the optimizer (which keeps fp32 masters
// below fp32), frozen ones directly, keeping their fp32 values when narrowed.
void to_device(Run& r) {
  r.optim->to(r.device, r.dtype);
  for (NamedTensor& p : r.m.model->params()) {
    if (p.tensor.requires_grad()) continue;
    if (r.dtype != DType::f32) r.frozen_fp32[p.name] = p.tensor.detach();
    p.tensor.set_data(p.tensor.detach().to(r.device).to(r.dtype));
  }
}

void write_run_json(const Run& r) {
  if (!r.comm->is_main()) return;
  json j = r.opt.to_json();
  j["world_size"] = r.comm->world_size();
  j["global_batch"] = r.loader->global_batch();
  j["total_steps"] = r.total_steps;
  write_file_atomic((fs::path(r.opt.out) / "run.json").string(), j.dump(2) + "\n");
}

// Trainable parameters per the stage's policy, starting from rank 0's weights on every rank.
ParamList load_model(Run& r) {
  r.m = load_model_dir(r.opt.model);
  if (r.opt.vision_cache_mb > 0)
    r.m.model->set_vision_cache(
        std::make_shared<VisionFeatureCache>(static_cast<size_t>(r.opt.vision_cache_mb) << 20));
  apply_freeze_policy(*r.m.model, r.opt.train);
  ParamList trainable = r.m.model->trainable_params();
  MV_CHECK(!trainable.empty(), "nothing to train with --train ", r.opt.train);
  std::vector<Tensor> ts;
  for (const NamedTensor& p : trainable) ts.push_back(p.tensor.detach());
  r.comm->broadcast(ts, 0);
  return trainable;
}

// The training and evaluation sets, the loader of this rank's share and the run's step count.
void load_data(Run& r) {
  SampleFormat fmt = SampleFormat::for_model(r.m.config, r.opt.max_seq_len);
  if (fmt.max_seq_len < r.opt.max_seq_len)
    log(r, "note: max_seq_len " + std::to_string(r.opt.max_seq_len) +
               " exceeds the model's context (llm.max_position_embeddings " +
               std::to_string(fmt.max_seq_len) + "); longer samples are " +
               (r.opt.over_long == "truncate" ? "cut at " : "skipped beyond ") +
               std::to_string(fmt.max_seq_len));
  SampleFormat eval_fmt = fmt;
  set_data_options(r.opt, true, fmt);
  set_data_options(r.opt, false, eval_fmt);
  r.train_set = std::make_unique<Dataset>(r.opt.data, r.opt.images, *r.m.tokenizer, fmt);
  if (!r.opt.eval.empty())
    r.eval_set = std::make_unique<Dataset>(r.opt.eval, r.opt.eval_images, *r.m.tokenizer, eval_fmt);
  LoaderOptions lo;
  lo.micro_batch = r.opt.batch_size;
  lo.grad_accum = r.opt.grad_accum;
  lo.world_size = r.comm->world_size();
  lo.rank = r.comm->rank();
  lo.seed = static_cast<uint64_t>(r.opt.seed);
  lo.workers = static_cast<int>(std::max<int64_t>(1, r.opt.num_workers));
  lo.max_bad_fraction = r.opt.max_bad_fraction;
  lo.pack_len = r.opt.pack != 0 ? fmt.max_seq_len : 0;
  r.loader = std::make_unique<Loader>(*r.train_set, lo);
  r.total_steps =
      r.opt.max_steps > 0 ? r.opt.max_steps : r.opt.epochs * r.loader->steps_per_epoch();
}

// Rank 0 locks the run directory (a second trainer on it fails here, naming the first), then
// removes what an interrupted save, prune or final/ write left. Every rank waits for that.
void take_run_dir(Run& r) {
  if (r.comm->is_main()) {
    r.lock = std::make_unique<RunLock>(r.opt.out);
    if (!r.lock->stale().empty())
      log(r, "note: " + r.lock->path() + " was left by a trainer that did not exit cleanly (" +
                 r.lock->stale() + "); it no longer holds it");
    for (const std::string& line : clean_run_leftovers(r.opt.out)) log(r, "note: " + line);
  }
  r.comm->barrier();
}

// Everything before the first step: device, model, data, optimizer, the checkpoint to resume
// from, the model on its device, run.json and the startup table.
void setup(Run& r) {
  r.device = compute_device(r.opt.device);
  r.dtype = r.opt.dtype == "bf16" ? DType::bf16 : DType::f32;
  MV_CHECK(r.dtype == DType::f32 || backend_for(r.device).computes(r.dtype), "--dtype ",
           r.opt.dtype, ": the ", backend_for(r.device).name(),
           " back-end does not train in it; --device ", r.device.str(), " trains in fp32");
  // Gradients of device parameters are reduced by the device's collectives.
  use_device_communicator(r.comm, r.device);
  fs::create_directories(r.opt.out);
  take_run_dir(r);
  const ParamList trainable = load_model(r);
  load_data(r);
  r.optim = std::make_unique<AdamW>(trainable, AdamWConfig{0.9, 0.999, 1e-8, r.opt.weight_decay});
  r.rng.reseed(static_cast<uint64_t>(r.opt.seed) + static_cast<uint64_t>(r.comm->rank()));
  if (!r.opt.resume.empty()) {
    const std::optional<std::string> dir =
        r.opt.resume == "auto" ? latest_checkpoint(r.opt.out) : r.opt.resume;
    if (dir)
      resume(r, *dir);
    else
      log(r, "no checkpoint in " + r.opt.out + "/checkpoints: starting from scratch");
  }
  to_device(r);
  r.train_step = std::make_unique<TrainStep>(*r.m.model, *r.optim, *r.comm, r.opt.grad_clip);
  write_run_json(r);
  print_startup(r);
}

// Counts a step skipped for a non-finite loss or gradient; too many in a row end the job.
void count_nonfinite(Run& r, const StepResult& res, Progress& progress) {
  if (res.applied) {
    r.nonfinite_in_row = 0;
    return;
  }
  ++r.nonfinite_total;
  if (++r.nonfinite_in_row > r.opt.max_nonfinite_steps)
    r.comm->abort(std::to_string(r.nonfinite_in_row) +
                  " steps in a row had a non-finite loss or gradient "
                  "(last loss " +
                  std::to_string(res.loss) + ", gradient norm " + std::to_string(res.grad_norm) +
                  "); HINT: lower --lr or check the data");
  progress.message("step " + std::to_string(r.step + 1) +
                   ": non-finite loss or gradient, step skipped");
}

// A signal on any rank stops every rank after the same step.
bool stop_requested(const Run& r) {
  std::vector<double> stop = {r.stop->received() != 0 ? 1.0 : 0.0};
  r.comm->all_reduce_sum(stop);
  return stop[0] > 0;
}

// Optimizer steps up to total_steps, with logging, evaluation and checkpoints on their schedules.
// Returns true when a signal stopped it (after saving a checkpoint).
bool loop(Run& r) {
  Progress progress(r.total_steps, r.step, r.opt.log_every);
  auto t_last = std::chrono::steady_clock::now();
  int64_t tokens_since = 0;
  // Seconds the steps since the last metrics line waited for their batch (SPEC §6 data_wait_s).
  double wait_since = 0;
  int64_t steps_since = 0;
  while (r.step < r.total_steps) {
    const auto t_wait = std::chrono::steady_clock::now();
    const Step s = r.loader->next_step();
    wait_since += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_wait).count();
    ++steps_since;
    const double lr =
        lr_at(r.step, r.total_steps, r.opt.warmup_steps, r.opt.lr, r.opt.min_lr_ratio);
    const StepResult res = r.train_step->run(s, lr);
    tokens_since += res.tokens;
    r.tokens_total += res.tokens;
    count_nonfinite(r, res, progress);
    ++r.step;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_last).count();
    const double tps = secs > 0 ? static_cast<double>(tokens_since) / secs : 0.0;
    const bool moe = r.m.model->config().llm.use_moe;
    if (r.comm->is_main())
      progress.update(r.step, res.loss, lr, tps,
                      moe ? std::optional<double>(res.aux_loss) : std::nullopt);
    if (r.step % r.opt.log_every == 0 || r.step == r.total_steps) {
      nlohmann::json line = {{"step", r.step},
                             {"epoch", s.epoch},
                             {"loss", res.loss},
                             {"lr", lr},
                             {"grad_norm", res.grad_norm},
                             {"tokens_per_s", tps},
                             {"skipped", r.loader->state().skipped_total},
                             {"data_wait_s", wait_since / static_cast<double>(steps_since)}};
      if (moe) line["aux_loss"] = res.aux_loss;
      append_metrics(r, line);
      t_last = std::chrono::steady_clock::now();
      tokens_since = 0;
      wait_since = 0;
      steps_since = 0;
    }
    if (s.epoch_end && r.comm->is_main()) progress.message(s.epoch_end->line());
    if (r.opt.eval_every > 0 && r.step % r.opt.eval_every == 0 && r.step < r.total_steps) {
      progress.finish();
      run_eval(r);
    }
    if (stop_requested(r)) {
      progress.finish();
      log(r, "stop requested: saving a checkpoint at step " + std::to_string(r.step));
      save(r);
      return true;
    }
    if (r.opt.save_every > 0 && r.step % r.opt.save_every == 0 && r.step < r.total_steps) {
      progress.finish();
      save(r);
    }
  }
  progress.finish();
  return false;
}

// After the last step: the final checkpoint, evaluation and model directory.
void finish(Run& r) {
  save(r);
  run_eval(r);
  if (r.comm->is_main()) {
    // The final model directory holds the fp32 weights, as a checkpoint does, in the layout of
    // the model directory the run started from (a Hugging Face SmolVLM directory stays one; its
    // tensors are then written in their source dtypes).
    const auto weights = fp32_weights(r);  // in the order of params()
    ParamList ps = r.m.model->params();
    for (size_t i = 0; i < ps.size(); ++i) ps[i].tensor.set_data(weights[i].second.to(kCPU));
    // Built beside it, synced, and swapped in whole: a kill at any instant leaves the previous
    // final/ or the new one, complete (SPEC §6).
    const std::string final_dir = (fs::path(r.opt.out) / "final").string();
    const std::string tmp = final_tmp_dir(r.opt.out);
    fs::remove_all(tmp);
    save_model_dir(*r.m.model, r.m.source, tmp);
    fsync_tree(tmp);
    replace_dir_atomic(tmp, final_dir);
    std::fprintf(stderr, "wrote %s\n", final_dir.c_str());
  }
  r.comm->barrier();
}

}  // namespace

int train_main(Stage stage, int argc, char** argv) {
  const StopSignals stop;  // before any other thread starts
  Run r;
  r.stop = &stop;
  r.comm = make_communicator();
  const char* prog = stage == Stage::pretrain ? "train_pretrain" : "train_sft";
  try {
    r.opt = parse_train_options(stage, std::vector<std::string>(argv + 1, argv + argc));
    setup(r);
    if (!loop(r)) finish(r);
    return 0;
  } catch (const std::exception& e) {
    if (r.comm->world_size() > 1) r.comm->abort(std::string(prog) + ": " + e.what());
    std::fprintf(stderr, "%s: error: %s\n", prog, e.what());
    return 1;
  }
}

}  // namespace minivlm
