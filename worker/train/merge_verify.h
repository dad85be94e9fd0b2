// Checks a merged model directory against what it was merged from: the adapter on its base.
// `sweep-worker merge` runs it on its output before the output gets its final name, and
// `sweep-worker verify-merge` runs it on any directory (docs/worker.md, "Verified merge").
//
// Figures, each against a tolerance of the written dtype (merge_tolerance):
//  - reload: the written files load into the model with no missing, unexpected or mis-shaped
//    tensor, every tensor in the requested dtype;
//  - logits: on K samples, the merged model's logits (computed in fp32 from the written weights)
//    against the adapter on the base (fp32): max |difference| and the mean KL divergence
//    KL(adapter || merged) per position;
//  - val metric: val_loss of both on those K samples (when val data is known).
// Also printed, not judged: how far the adapter moves the base's logits, as a scale for the
// error (a merge error near the adapter's own effect means the adapter was lost).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sweep::train {

struct MergeTolerance {
  double max_abs_logit = 0;  // max |logit difference| over every position and vocabulary entry
  double mean_kl = 0;        // mean over positions of KL(adapter || merged), nats
  double val_loss = 0;       // |val_loss difference|
};
// fp32, bf16 or fp16; throws std::invalid_argument for another name.
MergeTolerance merge_tolerance(const std::string& dtype);

struct MergeCheckInputs {
  std::string merged_dir;
  std::string checkpoint;      // the adapter (or full) checkpoint it was merged from
  std::string base_dir;        // the base it was merged onto
  std::string dtype = "fp32";  // what the merge was asked to write
  int samples = 8;             // K
  // Where the K samples come from: a LLaVA JSON file and its image folder. Empty: K synthetic
  // text-only sequences of token ids (fixed, from `seed`); the val metric is then skipped.
  std::string val_data, image_folder;
  uint64_t seed = 0;  // picks the K samples (eval_subset), as the job's evaluation does
  int64_t max_length = 2048;
  bool pad_to_square = true;
};

struct MergeCheck {
  int samples = 0;
  int64_t positions = 0;
  bool reload_ok = false;
  std::string reload_error;  // why the reload failed
  double max_abs_logit = 0, mean_kl = 0, max_kl = 0;
  double adapter_effect_max_abs = 0;  // max |logit difference| between base and adapter on base
  std::optional<double> val_loss_adapter, val_loss_merged;
  MergeTolerance tolerance;
  std::vector<std::string> failures;  // one line per figure past its tolerance

  bool ok() const { return failures.empty(); }
  // The figures, one per line, each with its tolerance and "ok" / "FAILED".
  std::string report() const;
};

// Loads one model at a time (adapter on base, then the merged directory, then the bare base), so
// the peak memory is one fp32 model plus K samples' logits. Throws std::runtime_error for inputs
// that cannot be read (the checkpoint, the base, the val data); a merged directory that does not
// reload is a failure in the result, not an exception.
MergeCheck verify_merge(const MergeCheckInputs& in);

}  // namespace sweep::train
