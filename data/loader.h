// Shuffled, seeded micro-batches of tokenised samples with their images decoded and
// preprocessed on a background thread, ahead of the training step.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/llava_json.h"
#include "data/preprocess.h"
#include "data/tokenizer.h"

namespace sweep::data {

struct LoadedSample {
  size_t index = 0;  // position in the sample list given to the loader
  std::string id;
  TokenizedSample tokens;
  std::vector<float> pixels;  // [3 * image_size * image_size] CHW; empty if text-only
};

struct LoaderOptions {
  std::string image_folder;  // relative image paths are under it; absolute ones used as given
  int image_size = 336;
  bool pad_to_square = true;  // image_aspect_ratio "pad"
  int batch_size = 1;
  uint64_t seed = 0;
  // Passed to tokenize_sample for LLaVA's mismatch rule only: truncation happens in the model's
  // splice, the loader never drops or cuts a sample.
  int64_t max_length = 2048;
  bool shuffle = true;
  int prefetch_batches = 2;  // batches prepared ahead of next()
  // > 0: an image whose header claims more pixels is refused before decoding (decode_image).
  int64_t max_image_pixels = 0;
};

// Epoch e visits the samples in a permutation drawn from (seed, e), so a run is reproducible and
// resumable. Batches do not straddle epochs: the last batch of an epoch may be smaller.
// Not thread-safe: one consumer calls next(). Errors of the background thread (an image that does
// not decode, a sample that does not tokenise) are rethrown by the next() that reaches them; an
// image that is missing, truncated or corrupt is a Failure (kNotFound / kUser) naming the file.
class BatchLoader {
 public:
  BatchLoader(std::vector<Sample> samples, const Tokenizer& tok, LoaderOptions opt);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next micro-batch (wraps to a new epoch); blocks only if the thread is behind.
  std::vector<LoadedSample> next();

  int epoch() const;              // epoch of the next batch next() returns
  double seconds_waited() const;  // total time next() spent blocked
  size_t size() const { return samples_.size(); }
  int64_t batches_per_epoch() const;

  // The position (epoch, cursor) of the next batch next() will return, and the seed; restore()
  // continues from there with the same batches an uninterrupted loader would have produced.
  nlohmann::json state() const;
  void restore(const nlohmann::json& state);

  // The order of epoch `epoch` (indices into the samples), as used by the loader.
  std::vector<size_t> epoch_order(int epoch) const;

 private:
  struct Item {
    int epoch = 0;
    size_t cursor = 0;  // position of the batch's first sample in the epoch order
    std::vector<LoadedSample> batch;
    std::exception_ptr error;
  };

  void start_thread(int epoch, size_t cursor);
  void stop_thread();
  void run(int epoch, size_t cursor);
  LoadedSample load_one(size_t index) const;

  std::vector<Sample> samples_;
  Tokenizer tok_;
  LoaderOptions opt_;

  int epoch_ = 0;  // consumer position
  size_t cursor_ = 0;
  double waited_s_ = 0.0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sweep::data
