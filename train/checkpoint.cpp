#include "train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "core/file_check.h"
#include "core/json_file.h"
#include "data/loader.h"
#include "io/atomic_file.h"
#include "core/error.h"
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

namespace {

// "model tensor 'x': 3 of 64 values non-finite (first nan at index 5)", or "" when it is fine.
std::string tensor_problem(const std::string& kind, const std::string& name, const Tensor& t,
                           double limit) {
  const Tensor::OutOfRange bad = t.out_of_range(limit);
  const int64_t n = t.numel();
  if (bad.count == 0) return "";
  const char* what = limit < std::numeric_limits<double>::infinity()
                         ? " values non-finite or beyond ±1e30"
                         : " values non-finite";
  return detail::str_cat(kind, " tensor '", name, "': ", bad.count, " of ", n, what, " (first ",
                         bad.first_value, " at index ", bad.first_index, ")");
}

// Opens what was written and checks it holds what was meant to be written.
void verify_written(const fs::path& dir, const CheckpointData& data) {
  const SafeTensorsFile model = SafeTensorsFile::open((dir / "model.safetensors").string());
  MV_CHECK(model.names().size() == data.model.size(), "checkpoint ", dir.string(),
           ": model.safetensors holds ", model.names().size(), " tensors after writing ",
           data.model.size());
  const SafeTensorsFile opt = SafeTensorsFile::open((dir / "optimizer.safetensors").string());
  MV_CHECK(opt.names().size() == data.optimizer.size(), "checkpoint ", dir.string(),
           ": optimizer.safetensors holds ", opt.names().size(), " tensors after writing ",
           data.optimizer.size());
  std::ifstream f(dir / "trainer_state.json");
  const nlohmann::json state = f.good() ? nlohmann::json::parse(f, nullptr, false)
                                        : nlohmann::json(nlohmann::json::value_t::discarded);
  MV_CHECK(!state.is_discarded() && state.size() == data.state.size(), "checkpoint ", dir.string(),
           ": trainer_state.json does not read back");
  MV_CHECK(fs::exists(dir / "DONE"), "checkpoint ", dir.string(), ": DONE was not written");
}

}  // namespace

void check_savable(const CheckpointData& data, const std::string& what) {
  std::vector<std::string> problems;
  const double inf = std::numeric_limits<double>::infinity();
  for (const auto& [name, t] : data.model)
    if (std::string p = tensor_problem("model", name, t, kExplodedWeight); !p.empty())
      problems.push_back(std::move(p));
  for (const auto& [name, t] : data.optimizer)
    if (std::string p = tensor_problem("optimizer", name, t, inf); !p.empty())
      problems.push_back(std::move(p));
  if (problems.empty()) return;
  std::string list;
  for (size_t i = 0; i < problems.size() && i < 8; ++i) list += "\n  " + problems[i];
  if (problems.size() > 8) list += detail::str_cat("\n  ... and ", problems.size() - 8, " more");
  MV_FAIL("refusing to write ", what, ": ", problems.size(),
          " tensor(s) hold non-finite or exploded values; the checkpoints already written are "
          "kept:",
          list);
}

std::string save_checkpoint(const std::string& run_dir, int64_t step, const CheckpointData& data,
                            int64_t keep) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  const std::string name = checkpoint_name(step);
  check_savable(data, "checkpoint " + (root / name).string());
  fs::create_directories(root);
  const fs::path final_dir = root / name;
  const fs::path tmp = root / (".tmp_" + name);
  fs::remove_all(tmp);  // a leftover of an interrupted save
  fs::create_directories(tmp);
  save_safetensors((tmp / "model.safetensors").string(), data.model);
  save_safetensors((tmp / "optimizer.safetensors").string(), data.optimizer);
  write_file_atomic((tmp / "trainer_state.json").string(), data.state.dump(2) + "\n");
  for (const std::string& f : data.files) {
    const std::string file = fs::path(f).filename().string();
    if (file == "trainer_state.json" || file == "DONE") continue;  // a checkpoint's own files
    fs::copy_file(f, tmp / file);
  }
  write_file_atomic((tmp / "DONE").string(), "ok\n");
  fsync_tree(tmp.string());
  verify_written(tmp, data);
  // One rename publishes it complete; a same-step directory (complete, or without DONE from an
  // older version's kill) is exchanged with it and then deleted.
  replace_dir_atomic(tmp.string(), final_dir.string());

  // Pruning renames a checkpoint out of the step_ namespace first: a kill in the middle of deleting
  // its files must not leave a directory that still looks complete.
  auto all = complete_checkpoints(run_dir);
  std::erase_if(all, [&](const auto& c) { return fs::path(c.second) == final_dir; });
  const size_t others_kept = keep > 0 ? static_cast<size_t>(keep) - 1 : 0;
  for (size_t i = 0; keep > 0 && i + others_kept < all.size(); ++i) {
    const fs::path doomed = root / (".del_" + fs::path(all[i].second).filename().string());
    fs::remove_all(doomed);
    fs::rename(all[i].second, doomed);
    fs::remove_all(doomed);
  }
  fsync_path(root.string());
  return final_dir.string();
}

std::string final_tmp_dir(const std::string& run_dir) {
  return (fs::path(run_dir) / ".tmp_final").string();
}

std::vector<std::string> clean_run_leftovers(const std::string& run_dir) {
  std::vector<std::string> done;
  const fs::path root = fs::path(run_dir) / "checkpoints";
  if (fs::is_directory(root)) {
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(root)) entries.push_back(e.path());
    std::sort(entries.begin(), entries.end());
    for (const fs::path& p : entries) {
      const std::string name = p.filename().string();
      if (name.rfind(".tmp_", 0) == 0 || name.rfind(".del_", 0) == 0) {
        fs::remove_all(p);
        done.push_back("removed " + p.string() + ", left by an interrupted " +
                       (name[1] == 't' ? "save" : "prune"));
      } else if (name.rfind(".old_", 0) == 0) {
        const std::string line = recover_replaced_dir((root / name.substr(5)).string());
        if (!line.empty()) done.push_back(line);
      }
    }
  }
  const std::string tmp = final_tmp_dir(run_dir);
  if (fs::exists(fs::symlink_status(tmp))) {
    fs::remove_all(tmp);
    done.push_back("removed " + tmp + ", left by an interrupted write of final/");
  }
  const std::string line = recover_replaced_dir((fs::path(run_dir) / "final").string());
  if (!line.empty()) done.push_back(line);
  return done;
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
