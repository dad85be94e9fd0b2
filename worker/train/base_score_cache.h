// Step 0's evaluation is the base model's own score: before the first update a LoRA job's model
// is the base (PEFT initialises B to zero, so every adapter adds exactly nothing) and a full
// fine-tune's is the base itself. Every job of a sweep that shares the base, the validation
// subset, the evaluation settings and the precision would compute the same numbers, so the first
// job to get there stores them in the sweep's shared cache directory (job.json `feature_cache`)
// and the others read them back instead of running the evaluation (with generation, the most
// expensive one of a job on a small model).
//
// An entry is keyed by everything the score depends on (base_score_key); a change of any of it
// is a miss. Entries are small JSON files written by rename, so concurrent jobs never read a
// partial one; two jobs that miss at once both evaluate and write the same numbers.
// LibTorch-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::train {

struct BaseScore {
  double val_loss = 0, val_token_acc = 0, val_exact_match = 0;
  int64_t val_samples = 0, val_tokens = 0;
};

// The canonical text of what step 0's score depends on: the base model directory's files (name,
// size, modification time), the validation file and every image of the evaluated subset (the
// same), the evaluation settings (subset size and seed, lengths, batch, image preprocessing),
// the base's dtype and the device type, and the worker program itself (a rebuilt worker
// recomputes). Throws std::runtime_error naming a file that cannot be stat'ed.
std::string base_score_key(const std::string& base_model_dir, const std::string& val_data,
                           const std::vector<std::string>& image_paths,
                           const nlohmann::json& eval_settings, const std::string& dtype,
                           const std::string& device);

class BaseScoreCache {
 public:
  BaseScoreCache(std::string dir, std::string key);

  // The stored score, or nullopt: no entry, an unreadable one, or one written for another key.
  std::optional<BaseScore> load() const;
  // Writes the entry (temp file + rename). A failure costs later jobs a recomputation only: it
  // is reported on stderr, not thrown.
  void save(const BaseScore& score) const;
  // <dir>/base-score-<hash of the key>.json
  std::string path() const;

 private:
  std::string dir_, key_;
};

}  // namespace sweep::train
