#include "worker/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <torch/serialize.h>

#include "data/max_length.h"
#include "protocol/job_file.h"
#include "worker/train/collate.h"
#include "worker/train/feature_cache.h"
#include "worker/train/optimizer_setup.h"
#include "worker/train/rng_state.h"

namespace sweep::train {
namespace {

constexpr const char* kOptimizerFile = "optimizer.pt";
constexpr const char* kRngFile = "rng.json";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Real (unpadded) tokens of the batch splice makes from `in`, from the host-side ids: each image
// placeholder becomes `image_tokens` positions, then each sample is cut to max_length (if > 0).
int64_t spliced_length(const model::MultimodalInputs& in, int64_t image_tokens,
                       int64_t max_length) {
  int64_t total = 0;
  for (const std::vector<int64_t>& ids : in.input_ids) {
    auto n = static_cast<int64_t>(ids.size());
    if (model::image_placeholder_position(ids)) n += image_tokens - 1;
    total += max_length > 0 ? std::min(n, max_length) : n;
  }
  return total;
}

}  // namespace

Trainer::Trainer(model::LlavaForConditionalGeneration model, const model::TrainableGroups& groups,
                 const TrainParams& p, data::BatchLoader& loader)
    : model_(std::move(model)),
      p_(p),
      loader_(loader),
      opt_(std::make_unique<OptimizerSetup>(make_optimizer(model_, groups, p))),
      schedule_(parse_schedule_kind(p.lr_scheduler), p.max_steps,
                resolve_warmup_steps(p.max_steps, p.warmup_ratio, p.warmup_steps)),
      image_size_(model_->config().image_size()),
      image_tokens_(model_->config().num_image_tokens()) {}

Trainer::~Trainer() = default;

StepResult Trainer::step() {
  begin_step();
  for (int micro = 0; micro < micro_batches(); ++micro) {
    model::SplicedBatch b = next_micro_batch();  // (B, T, H) embeds
    torch::Tensor loss = model_->loss(b);        // scalar fp32, logits at supervised positions only
    (loss / micro_batches()).backward();
    add_micro_loss(loss);
  }
  return finish_step();
}

void Trainer::begin_step() {
  pending_ = Pending{};
  pending_.started = std::chrono::steady_clock::now();
  pending_.waited_before = loader_.seconds_waited();
  model_->train();
  set_lr_factor(*opt_, schedule_.factor(step_));
  opt_->optimizer->zero_grad();
}

model::SplicedBatch Trainer::next_micro_batch() {
  std::vector<data::LoadedSample> batch = loader_.next();
  model::MultimodalInputs in = collate(batch, image_size_, model_->device());
  if (feature_cache_) {
    std::vector<std::string> paths;
    for (const data::LoadedSample& s : batch) paths.push_back(image_paths_.at(s.index));
    feature_cache_->fill(model_, in, paths);  // in.image_hidden (Ni, P, Dv)
  }
  pending_.result.samples += static_cast<int64_t>(batch.size());
  const int64_t max_length =
      data::resolve_max_length(p_.model_max_length, model_->config().text.max_position_embeddings)
          .value;
  pending_.result.tokens += spliced_length(in, image_tokens_, max_length);
  return model_->splice(in, max_length);
}

void Trainer::add_micro_loss(const torch::Tensor& loss) {
  // The losses stay on the device until the step ends: one host read for the logged value and
  // the divergence check, not one per micro-batch.
  torch::Tensor value = loss.detach().to(torch::kFloat64);
  pending_.loss_sum = pending_.loss_sum.defined() ? pending_.loss_sum + value : value;
}

StepResult Trainer::finish_step() {
  const int accum = micro_batches();
  StepResult r = pending_.result;
  const double loss_value = pending_.loss_sum.item<double>();
  if (!std::isfinite(loss_value))
    throw DivergedError("loss is " + std::to_string(loss_value / accum) + " at step " +
                        std::to_string(step_ + 1) + " (lower learning_rate or set max_grad_norm)");

  const double max_norm =
      p_.max_grad_norm > 0 ? p_.max_grad_norm : std::numeric_limits<double>::infinity();
  r.grad_norm = opt_->optimizer->clip_grad_norm(max_norm);
  if (!std::isfinite(r.grad_norm))
    throw DivergedError("gradient norm is " + std::to_string(r.grad_norm) + " at step " +
                        std::to_string(step_ + 1) + " (lower learning_rate)");
  opt_->optimizer->step();

  ++step_;
  samples_seen_ += r.samples;
  tokens_seen_ += r.tokens;
  r.step = step_;
  r.loss = loss_value / accum;
  r.lr =
      static_cast<torch::optim::AdamWOptions&>(opt_->optimizer->param_groups()[0].options()).lr();
  r.data_wait_seconds = loader_.seconds_waited() - pending_.waited_before;
  r.seconds = seconds_since(pending_.started);
  return r;
}

void Trainer::use_feature_cache(VisionFeatureCache* cache, std::vector<std::string> image_paths) {
  feature_cache_ = cache;
  image_paths_ = std::move(image_paths);
}

double Trainer::epoch() const {
  return loader_.size() ? static_cast<double>(samples_seen_) / loader_.size() : 0.0;
}

std::string Trainer::describe_param_groups() const {
  std::ostringstream os;
  for (size_t i = 0; i < opt_->groups.size(); ++i)
    os << (i ? ", " : "") << opt_->groups[i].name << ": " << opt_->groups[i].tensors
       << " tensors at lr " << opt_->groups[i].peak_lr;
  return os.str();
}

nlohmann::json Trainer::state() const {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : opt_->groups) groups.push_back({{"name", g.name}, {"peak_lr", g.peak_lr}});
  return {{"global_step", step_},
          {"samples_seen", samples_seen_},
          {"tokens_seen", tokens_seen_},
          {"epoch", epoch()},
          {"max_steps", p_.max_steps},
          {"schedule",
           {{"kind", schedule_kind_name(schedule_.kind())},
            {"total_steps", schedule_.total_steps()},
            {"warmup_steps", schedule_.warmup_steps()},
            {"next_lr_factor", schedule_.factor(step_)}}},
          {"param_groups", groups},
          {"data", loader_.state()}};
}

void Trainer::save_files(const std::string& dir) const {
  // Serialized in memory, then written through the file-system door: LibTorch's file writer
  // finishes the zip archive in its destructor, and a full disk there throws from a destructor,
  // which aborts the whole process (SIGABRT) before any `failed` event is written.
  std::ostringstream optimizer;
  torch::save(*opt_->optimizer, optimizer);
  write_file_atomic(dir + "/" + kOptimizerFile, optimizer.str());
  auto m = model_;  // a handle; lora_dropout_generator takes it by reference
  write_file_atomic(dir + "/" + kRngFile,
                    capture_rng_state(model::lora_dropout_generator(m)).dump() + "\n");
}

void Trainer::restore(const std::string& dir, const nlohmann::json& state) {
  const std::string opt_path = dir + "/" + kOptimizerFile, rng_path = dir + "/" + kRngFile;
  for (const auto& path : {opt_path, rng_path})
    if (!std::filesystem::exists(path))
      throw std::runtime_error("checkpoint " + dir + " has no " + path.substr(dir.size() + 1) +
                               ": it cannot be resumed (delete it to resume from an older one)");
  try {
    torch::load(*opt_->optimizer, opt_path);
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint " + dir + ": optimizer state does not fit this job (" +
                             std::string(e.what()).substr(0, 200) + ")");
  }
  std::ifstream rng_in(rng_path);
  restore_rng_state(nlohmann::json::parse(rng_in), model::lora_dropout_generator(model_));
  step_ = state.at("global_step").get<int>();
  samples_seen_ = state.at("samples_seen").get<int64_t>();
  tokens_seen_ = state.at("tokens_seen").get<int64_t>();
  loader_.restore(state.at("data"));
}

}  // namespace sweep::train
