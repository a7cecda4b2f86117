#include "train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "core/file_check.h"
#include "core/json_file.h"
#include "data/loader.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace minivlm {

namespace fs = std::filesystem;

namespace {

std::vector<std::pair<int64_t, std::string>> complete_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  const fs::path root = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(root)) return out;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.rfind("step_", 0) != 0) continue;
    if (!fs::exists(e.path() / "DONE")) continue;
    try {
      out.emplace_back(std::stoll(name.substr(5)), e.path().string());
    } catch (const std::exception&) {
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::string save_checkpoint(const std::string& run_dir, int64_t step, const CheckpointData& data,
                            int64_t keep) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  fs::create_directories(root);
  const fs::path final_dir = root / checkpoint_name(step);
  const fs::path tmp = root / (".tmp_" + checkpoint_name(step));
  fs::remove_all(tmp);  // a leftover of an interrupted save
  fs::create_directories(tmp);
  save_safetensors((tmp / "model.safetensors").string(), data.model);
  save_safetensors((tmp / "optimizer.safetensors").string(), data.optimizer);
  write_file_atomic((tmp / "trainer_state.json").string(), data.state.dump(2) + "\n");
  for (const std::string& f : data.files) {
    const std::string name = fs::path(f).filename().string();
    if (name == "trainer_state.json" || name == "DONE") continue;  // a checkpoint's own files
    fs::copy_file(f, tmp / name);
  }
  fsync_path(tmp.string());
  fs::remove_all(final_dir);  // an incomplete directory of the same step (no DONE) from a kill
  fs::rename(tmp, final_dir);
  fsync_path(root.string());
  write_file_atomic((final_dir / "DONE").string(), "ok\n");
  fsync_path(final_dir.string());

  // Pruning renames a checkpoint out of the step_ namespace first: a kill in the middle of deleting
  // its files must not leave a directory that still looks complete.
  const auto all = complete_checkpoints(run_dir);
  for (size_t i = 0; keep > 0 && i + static_cast<size_t>(keep) < all.size(); ++i) {
    const fs::path doomed = root / (".del_" + fs::path(all[i].second).filename().string());
    fs::remove_all(doomed);
    fs::rename(all[i].second, doomed);
    fs::remove_all(doomed);
  }
  return final_dir.string();
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  const auto all = complete_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

LoadedCheckpoint load_checkpoint(const std::string& dir) {
  const fs::path d(dir);
  MV_CHECK(fs::exists(d / "DONE"), "checkpoint ", dir, " is incomplete (no DONE file)");
  LoadedCheckpoint c;
  c.dir = dir;
  c.model_path = (d / "model.safetensors").string();
  const SafeTensorsFile opt = SafeTensorsFile::open((d / "optimizer.safetensors").string());
  for (const std::string& n : opt.names()) c.optimizer.emplace(n, opt.get(n));
  const std::string state_path = (d / "trainer_state.json").string();
  MV_CHECK(fs::exists(state_path), "checkpoint ", dir, " has no trainer_state.json");
  c.state = read_json_file(state_path, "trainer state");
  MV_CHECK(c.state.is_object(), state_path, ": the trainer state is not a JSON object but a JSON ",
           c.state.type_name());
  return c;
}

nlohmann::json parse_trainer_state(std::string_view text, const std::string& origin) {
  nlohmann::json j = parse_json(text, origin);
  check_trainer_state(j, origin);
  return j;
}

void check_trainer_state(const nlohmann::json& j, const std::string& origin) {
  MV_CHECK(j.is_object(), origin, ": the trainer state is not a JSON object but a JSON ",
           j.type_name());
  const auto integer = [&](const nlohmann::json& o, const char* key, int64_t lo, int64_t hi,
                           const std::string& where) {
    const auto it = o.find(key);
    MV_CHECK(it != o.end(), origin, ": ", where, "has no \"", key, "\"");
    MV_CHECK(it->is_number_integer(), origin, ": ", where, "\"", key,
             "\" is not an integer but a JSON ", it->type_name());
    // The parser stores every non-negative integer as unsigned.
    const bool fits = it->is_number_unsigned()
                          ? it->get<uint64_t>() <= static_cast<uint64_t>(hi) &&
                                static_cast<int64_t>(it->get<uint64_t>()) >= lo
                          : it->get<int64_t>() >= lo && it->get<int64_t>() <= hi;
    MV_CHECK(fits, origin, ": ", where, "\"", key, "\" must be in [", lo, ", ", hi, "], got ",
             it->dump());
    return it->get<int64_t>();
  };
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  for (const char* key : {"step", "optimizer_steps", "nonfinite_steps", "tokens"})
    integer(j, key, 0, kMax, "");
  const int64_t global_batch = integer(j, "global_batch", 1, kMax, "");
  const int64_t world = integer(j, "world_size", 1, kMaxTrainerWorldSize, "");
  const auto ranks = j.find("ranks");
  MV_CHECK(ranks != j.end() && ranks->is_array() && ranks->size() == static_cast<size_t>(world),
           origin, ": \"ranks\" must be an array of world_size (", world, ") entries");
  for (size_t r = 0; r < ranks->size(); ++r) {
    const nlohmann::json& e = (*ranks)[r];
    const std::string where = "ranks[" + std::to_string(r) + "] ";
    MV_CHECK(e.is_object() && e.contains("loader") && e.contains("rng") && e["rng"].is_string(),
             origin, ": ", where, "must be an object with \"loader\" and a string \"rng\"");
    LoaderState s;
    try {
      s = LoaderState::from_json(e["loader"]);
    } catch (const Error& err) {
      MV_FAIL(origin, ": ", where, err.what());
    }
    int64_t samples = 0;
    MV_CHECK(!__builtin_mul_overflow(s.step_in_epoch, global_batch, &samples), origin, ": ", where,
             "loader step_in_epoch ", s.step_in_epoch, " times global_batch ", global_batch,
             " overflows");
  }
}

}  // namespace minivlm
