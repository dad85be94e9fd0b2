#include "worker/train/checkpoint_manager.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/file_system.h"
#include "protocol/job_file.h"

namespace sweep::train {
namespace fs = std::filesystem;
namespace {

constexpr const char* kStepPrefix = "step-";
constexpr const char* kTempPrefix = ".tmp-";

std::optional<double> metric_of(const CheckpointInfo& c, const std::string& name) {
  if (!c.metrics.is_object() || !c.metrics.contains(name)) return std::nullopt;
  const auto& v = c.metrics.at(name);
  if (!v.is_number()) return std::nullopt;
  double d = v.get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::optional<CheckpointInfo> read_info(const fs::path& dir) {
  std::ifstream in(dir / CheckpointManager::kStateFile);
  if (!in) return std::nullopt;
  try {
    nlohmann::json state = nlohmann::json::parse(in);
    CheckpointInfo info;
    info.step = state.at("step").get<int>();
    info.path = dir.string();
    if (state.contains("metrics") && state.at("metrics").is_object())
      info.metrics = state.at("metrics");
    return info;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void remove_all_or_throw(const fs::path& p) { remove_all(p.string()); }

}  // namespace

CheckpointManager::CheckpointManager(std::string dir, std::string objective_metric, bool minimize,
                                     int keep_top_k)
    : dir_(std::move(dir)),
      objective_(std::move(objective_metric)),
      minimize_(minimize),
      keep_top_k_(std::max(keep_top_k, 0)) {}

std::string CheckpointManager::step_dir_name(int step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%06d", kStepPrefix, step);
  return buf;
}

void CheckpointManager::scan() {
  kept_.clear();
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory()) continue;
    if (name.rfind(kTempPrefix, 0) == 0) {
      remove_all_or_throw(entry.path());  // an interrupted save
      continue;
    }
    if (name.rfind(kStepPrefix, 0) != 0) continue;
    if (auto info = read_info(entry.path())) kept_.push_back(*info);
  }
  std::sort(kept_.begin(), kept_.end(),
            [](const CheckpointInfo& a, const CheckpointInfo& b) { return a.step < b.step; });
}

CheckpointInfo CheckpointManager::save(int step, const nlohmann::json& metrics,
                                       nlohmann::json state,
                                       const std::function<void(const std::string&)>& write_files,
                                       std::vector<std::string>* deleted) {
  // Everything is written under a temp name and renamed into place: scan() skips (and removes)
  // temp directories, so a save that fails at any call leaves the previous checkpoints as they
  // were and nothing half-written under a step- name.
  create_directories(dir_);
  const fs::path final_dir = fs::path(dir_) / step_dir_name(step);
  const fs::path tmp_dir = fs::path(dir_) / (std::string(kTempPrefix) + step_dir_name(step));
  remove_all_or_throw(tmp_dir);
  create_directories(tmp_dir.string());

  state["step"] = step;
  state["metrics"] = metrics.is_object() ? metrics : nlohmann::json::object();
  try {
    write_files(tmp_dir.string());
    write_file_atomic((tmp_dir / kStateFile).string(), state.dump(2) + "\n");
    remove_all_or_throw(final_dir);
    rename_path(tmp_dir.string(), final_dir.string());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);  // frees the space a full disk needs; scan() would remove it too
    throw;
  }
  write_file_atomic((fs::path(dir_) / kLatestFile).string(), step_dir_name(step) + "\n");

  CheckpointInfo info{step, final_dir.string(), state["metrics"]};
  kept_.erase(std::remove_if(kept_.begin(), kept_.end(),
                             [&](const CheckpointInfo& c) { return c.step == step; }),
              kept_.end());
  kept_.push_back(info);
  std::sort(kept_.begin(), kept_.end(),
            [](const CheckpointInfo& a, const CheckpointInfo& b) { return a.step < b.step; });
  std::vector<std::string> removed = prune();
  if (deleted) deleted->insert(deleted->end(), removed.begin(), removed.end());
  return info;
}

bool CheckpointManager::better(const CheckpointInfo& a, const CheckpointInfo& b) const {
  auto va = metric_of(a, objective_), vb = metric_of(b, objective_);
  if (va && !vb) return true;
  if (!va) return false;
  if (*va != *vb) return minimize_ ? *va < *vb : *va > *vb;
  return a.step < b.step;  // ties: the earlier checkpoint reached it first
}

std::vector<std::string> CheckpointManager::prune() {
  std::vector<CheckpointInfo> ranked;
  for (const auto& c : kept_)
    if (metric_of(c, objective_)) ranked.push_back(c);
  std::sort(ranked.begin(), ranked.end(),
            [this](const CheckpointInfo& a, const CheckpointInfo& b) { return better(a, b); });
  std::vector<int> keep_steps;
  for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(keep_top_k_); ++i)
    keep_steps.push_back(ranked[i].step);
  if (!kept_.empty()) keep_steps.push_back(kept_.back().step);

  std::vector<std::string> removed;
  std::vector<CheckpointInfo> still;
  for (const auto& c : kept_) {
    if (std::find(keep_steps.begin(), keep_steps.end(), c.step) != keep_steps.end()) {
      still.push_back(c);
    } else {
      remove_all_or_throw(c.path);
      removed.push_back(c.path);
    }
  }
  kept_ = std::move(still);
  return removed;
}

std::optional<CheckpointInfo> CheckpointManager::latest() const {
  if (kept_.empty()) return std::nullopt;
  return kept_.back();
}

std::optional<CheckpointInfo> CheckpointManager::best() const {
  std::optional<CheckpointInfo> out;
  for (const auto& c : kept_) {
    if (!metric_of(c, objective_)) continue;
    if (!out || better(c, *out)) out = c;
  }
  return out;
}

}  // namespace sweep::train
