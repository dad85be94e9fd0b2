// Built-in resources named `builtin:...` in sweep specs, and the cache they are made into
// (docs/demo.md). LibTorch-free; uses only the standard library and flock(2).
#pragma once

#include <functional>
#include <string>

namespace sweep::data {

// $SWEEP_CACHE, else ~/.cache/llava-sweep; created if missing. Throws naming the path if it
// cannot be created.
std::string cache_dir();

// True when `ref` starts with "builtin:".
bool is_builtin(const std::string& ref);

// Runs `make` at most once across threads and processes for `dir`:
// - if `dir` is complete (holds the marker written by a finished make_once), returns at once;
// - else takes an exclusive flock on `dir + ".lock"` (waiters block and log "waiting for another
//   process making <dir>" on stderr), re-checks, removes any leftover of a crashed maker, creates
//   an empty `tmp_dir` next to `dir`, calls make(tmp_dir), writes the marker and renames tmp_dir
//   to `dir`.
// If `make` throws, the temp dir is removed and the exception propagates; a process killed
// mid-make leaves only the temp dir, which the next caller removes. Either way `dir` never holds
// half-written content. Throws Failure (common/failure.h) naming the path on IO errors.
void make_once(const std::string& dir, const std::function<void(const std::string& tmp_dir)>& make);

// "builtin:shapes/vqa_train.json" -> "<cache>/shapes-v2/vqa_train.json", making the dataset once
// (make_once) with the default ShapesOptions. Known: builtin:shapes (the root),
// builtin:shapes/images, builtin:shapes/captions_train.json, builtin:shapes/vqa_train.json,
// builtin:shapes/vqa_val.json, builtin:shapes/corpus.txt. Anything else throws
// std::runtime_error listing the known refs.
std::string resolve_builtin_data(const std::string& ref);

constexpr const char* kTinyLlavaRef = "builtin:tiny-llava";

// "builtin:tiny-llava" -> "<cache>/tiny-llava-v2". Only names the directory: the model is made
// by `sweep-worker make-builtin tiny-llava` inside make_once(builtin_model_dir(ref), ...).
// Unknown refs throw Failure (common/failure.h) listing the known models.
std::string builtin_model_dir(const std::string& ref);

}  // namespace sweep::data
