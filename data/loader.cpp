#include "data/loader.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <stdexcept>

#include "common/failure.h"
#include "data/image.h"

namespace sweep::data {
namespace {

// Uniform in [0, n) without the implementation-defined std::uniform_int_distribution, so the
// order is the same with every standard library.
uint64_t bounded(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

}  // namespace

BatchLoader::BatchLoader(std::vector<Sample> samples, const Tokenizer& tok, LoaderOptions opt)
    : samples_(std::move(samples)), tok_(tok), opt_(std::move(opt)) {
  if (samples_.empty()) fail(ErrorKind::kUser, "BatchLoader: the dataset has no samples");
  if (opt_.batch_size < 1) fail(ErrorKind::kUser, "BatchLoader: batch_size must be >= 1");
  opt_.prefetch_batches = std::max(1, opt_.prefetch_batches);
  start_thread(0, 0);
}

BatchLoader::~BatchLoader() { stop_thread(); }

std::vector<size_t> BatchLoader::epoch_order(int epoch) const {
  std::vector<size_t> order(samples_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (!opt_.shuffle) return order;
  std::mt19937_64 rng(opt_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[bounded(rng, i)]);
  return order;
}

int64_t BatchLoader::batches_per_epoch() const {
  return static_cast<int64_t>((samples_.size() + opt_.batch_size - 1) / opt_.batch_size);
}

LoadedSample BatchLoader::load_one(size_t index) const {
  const Sample& s = samples_[index];
  LoadedSample out;
  out.index = index;
  out.id = s.id;
  const bool has_image = !s.image.empty();
  out.tokens = tokenize_sample(s, tok_, has_image, opt_.max_length);
  if (has_image) {
    const std::string path = resolve_image_path(opt_.image_folder, s.image);
    out.pixels = clip_preprocess(decode_image(path, opt_.max_image_pixels), opt_.image_size,
                                 opt_.pad_to_square);
  }
  return out;
}

void BatchLoader::run(int epoch, size_t cursor) {
  std::vector<size_t> order = epoch_order(epoch);
  for (;;) {
    Item item;
    item.epoch = epoch;
    item.cursor = cursor;
    try {
      const size_t end = std::min(order.size(), cursor + static_cast<size_t>(opt_.batch_size));
      for (size_t i = cursor; i < end; ++i) item.batch.push_back(load_one(order[i]));
    } catch (...) {
      item.batch.clear();
      item.error = std::current_exception();
    }
    cursor += static_cast<size_t>(opt_.batch_size);
    if (cursor >= order.size()) {
      cursor = 0;
      order = epoch_order(++epoch);
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock,
             [&] { return stop_ || queue_.size() < static_cast<size_t>(opt_.prefetch_batches); });
    if (stop_) return;
    queue_.push_back(std::move(item));
    cv_.notify_all();
  }
}

void BatchLoader::start_thread(int epoch, size_t cursor) {
  epoch_ = epoch;
  cursor_ = cursor;
  stop_ = false;
  queue_.clear();
  thread_ = std::thread([this, epoch, cursor] { run(epoch, cursor); });
}

void BatchLoader::stop_thread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<LoadedSample> BatchLoader::next() {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty(); });
  waited_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Item item = std::move(queue_.front());
  queue_.pop_front();
  cv_.notify_all();
  lock.unlock();
  // The position advances past a failed batch too, so a caller that skips it can go on.
  cursor_ = item.cursor + static_cast<size_t>(opt_.batch_size);
  epoch_ = item.epoch;
  if (cursor_ >= samples_.size()) {
    cursor_ = 0;
    ++epoch_;
  }
  if (item.error) std::rethrow_exception(item.error);
  return std::move(item.batch);
}

int BatchLoader::epoch() const { return epoch_; }

double BatchLoader::seconds_waited() const { return waited_s_; }

nlohmann::json BatchLoader::state() const {
  return {{"epoch", epoch_},
          {"cursor", cursor_},
          {"seed", opt_.seed},
          {"samples", samples_.size()},
          {"batch_size", opt_.batch_size},
          {"shuffle", opt_.shuffle}};
}

void BatchLoader::restore(const nlohmann::json& state) {
  const auto samples = state.at("samples").get<size_t>();
  if (samples != samples_.size()) {
    fail(ErrorKind::kUser, "BatchLoader: the saved position is for " + std::to_string(samples) +
                               " samples, the dataset has " + std::to_string(samples_.size()) +
                               " (hint: resume with the data the run started with)");
  }
  const int epoch = state.at("epoch").get<int>();
  const auto cursor = state.at("cursor").get<size_t>();
  stop_thread();
  opt_.seed = state.value("seed", opt_.seed);
  start_thread(epoch, cursor);
}

}  // namespace sweep::data
