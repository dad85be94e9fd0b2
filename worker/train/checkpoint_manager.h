// The checkpoints directory of one run: <run_dir>/checkpoints/step-000040/... Each checkpoint is
// written into a temp directory beside its final name and renamed into place, so a crash leaves
// either a whole checkpoint or none. After each save the manager keeps the best `keep_top_k`
// checkpoints by the objective metric plus the latest one, deletes the others, and points the
// `latest` file (one line: the directory name) at the newest. LibTorch-free: the tensors are
// written by the caller's callback.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::train {

struct CheckpointInfo {
  int step = 0;
  std::string path;                                   // the checkpoint directory
  nlohmann::json metrics = nlohmann::json::object();  // empty for a checkpoint without evaluation
};

class CheckpointManager {
 public:
  static constexpr const char* kStateFile = "trainer_state.json";
  static constexpr const char* kLatestFile = "latest";

  // `minimize`: the objective is better when smaller (mode min). keep_top_k >= 0.
  CheckpointManager(std::string dir, std::string objective_metric, bool minimize, int keep_top_k);

  // Reads the existing checkpoints (their trainer_state.json) and removes leftover temp
  // directories of an interrupted save. Directories without a readable state file are ignored.
  void scan();

  // Writes checkpoint `step`: `state` (plus "step" and "metrics") becomes trainer_state.json, and
  // `write_files(dir)` writes everything else into the temp directory. Replaces an existing
  // checkpoint of the same step. Paths removed by pruning are appended to `deleted` if given.
  // Throws std::runtime_error naming the directory when the file system refuses.
  CheckpointInfo save(int step, const nlohmann::json& metrics, nlohmann::json state,
                      const std::function<void(const std::string& dir)>& write_files,
                      std::vector<std::string>* deleted = nullptr);

  std::optional<CheckpointInfo> latest() const;
  // The best checkpoint that has the objective metric; nullopt when none has it.
  std::optional<CheckpointInfo> best() const;
  // Kept checkpoints, by step.
  const std::vector<CheckpointInfo>& checkpoints() const { return kept_; }

  const std::string& dir() const { return dir_; }
  static std::string step_dir_name(int step);  // "step-000040"

 private:
  bool better(const CheckpointInfo& a, const CheckpointInfo& b) const;
  std::vector<std::string> prune();

  std::string dir_;
  std::string objective_;
  bool minimize_;
  int keep_top_k_;
  std::vector<CheckpointInfo> kept_;  // sorted by step
};

}  // namespace sweep::train
