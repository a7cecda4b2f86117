#include "train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

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
  std::ifstream f(d / "trainer_state.json");
  MV_CHECK(f.good(), "checkpoint ", dir, " has no trainer_state.json");
  try {
    c.state = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    MV_FAIL(dir, "/trainer_state.json: ", e.what());
  }
  return c;
}

}  // namespace minivlm
