// `sweep-worker bench (--model DIR | --config FILE) [--device cpu|cuda] [--batch B]
//  [--text-tokens T] [--steps N] [--threads K] [--rank R] [--precision fp32|bf16]
//  [--gradient-checkpointing 0|1] [--pack P] [--profile FILE]`: times LoRA training steps of the
// model in DIR (or of random weights of the shapes in a config.json, drawn on the device) on random
// inputs and prints one JSON line (docs/performance.md, docs/gpu.md). A step is what a sweep job's
// step is: splice, forward, loss, backward, AdamW; LoRA rank R (alpha 2R) on q/k/v/o/gate/up/down
// of the language model, projector and vision tower frozen. Each sample is one image and T text
// tokens, the last half of the text supervised. Two warm-up steps are not timed. --pack P trains P
// adapters (ranks R, seeds 1..P, each its own AdamW) on one shared frozen base, their
// language-model passes run together as a packed worker runs them (worker/model/pack.h);
// tokens_per_s and samples_per_s count all P jobs. --profile FILE writes the operators of one more
// step, after the timed ones, as a Chrome trace (bench/worker/profile_summary.py sums it per
// operator). bench/worker/peer.py runs the same step in PyTorch-Python;
// bench/worker/side_by_side.sh both.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "data/special_tokens.h"
#include "worker/commands/commands.h"
#include "worker/model/checkpoint.h"
#include "worker/model/lora.h"
#include "worker/model/pack.h"
#include "worker/train/flat_adamw.h"
#include "worker/train/model_setup.h"
#include "worker/train/tool_args.h"

#if SWEEP_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace sweep::worker {
namespace {

constexpr const char* kUsage =
    "usage: sweep-worker bench (--model DIR | --config FILE) [--device cpu|cuda] [--batch B] "
    "[--text-tokens T] [--steps N] [--threads K] [--rank R] [--precision fp32|bf16] "
    "[--gradient-checkpointing 0|1] [--pack P] [--profile FILE]";

struct BenchOptions {
  std::string model_dir;
  std::string config_file;
  std::string device = "cpu";
  int batch = 4;
  int text_tokens = 64;
  int steps = 5;
  int threads = 1;
  int rank = 8;
  std::string precision = "fp32";
  bool gradient_checkpointing = false;
  int pack = 1;
  std::string profile_file;  // empty: no profile
};

BenchOptions parse(const Args& args) {
  train::ToolArgs a("bench", args,
                    {"model", "config", "device", "batch", "text-tokens", "steps", "threads",
                     "rank", "precision", "gradient-checkpointing", "pack", "profile"},
                    kUsage);
  BenchOptions o;
  o.model_dir = a.get("model", "");
  o.config_file = a.get("config", "");
  if (o.model_dir.empty() == o.config_file.empty())
    throw train::ToolArgsError("bench: give exactly one of --model DIR and --config FILE");
  o.device = a.get("device", o.device);
  o.batch = a.get_int("batch", o.batch);
  o.text_tokens = a.get_int("text-tokens", o.text_tokens);
  o.steps = a.get_int("steps", o.steps);
  o.threads = a.get_int("threads", o.threads);
  o.rank = a.get_int("rank", o.rank);
  o.precision = a.get("precision", o.precision);
  o.pack = a.get_int("pack", o.pack);
  o.profile_file = a.get("profile", "");
  const int checkpointing = a.get_int("gradient-checkpointing", 0);
  if (checkpointing != 0 && checkpointing != 1)
    throw train::ToolArgsError("bench: --gradient-checkpointing must be 0 or 1, got " +
                               std::to_string(checkpointing));
  o.gradient_checkpointing = checkpointing == 1;
  auto at_least = [](const char* name, int value, int low) {
    if (value < low)
      throw train::ToolArgsError("bench: --" + std::string(name) + " must be >= " +
                                 std::to_string(low) + ", got " + std::to_string(value));
  };
  at_least("batch", o.batch, 1);
  at_least("text-tokens", o.text_tokens, 2);  // BOS and at least one supervised token
  at_least("steps", o.steps, 1);
  at_least("threads", o.threads, 1);
  at_least("rank", o.rank, 1);
  at_least("pack", o.pack, 1);
  if (o.precision != "fp32" && o.precision != "bf16")
    throw train::ToolArgsError("bench: --precision must be fp32 or bf16, got '" + o.precision +
                               "'");
  return o;
}

// B samples of BOS, the image placeholder, then T - 1 text ids; labels on the last T / 2 text
// tokens. Ids are drawn from the generator so every run times the same inputs.
model::MultimodalInputs random_batch(const model::LlavaConfig& c, const BenchOptions& o,
                                     torch::Device device) {
  torch::manual_seed(0);
  const int64_t vocab = c.text.vocab_size;
  model::MultimodalInputs in;
  for (int b = 0; b < o.batch; ++b) {
    std::vector<int64_t> ids = {1, data::kImageTokenIndex};
    auto text = torch::randint(3, vocab, {o.text_tokens - 1}, torch::kLong);
    for (int64_t i = 0; i < text.size(0); ++i) ids.push_back(text[i].item<int64_t>());
    std::vector<int64_t> labels(ids.size(), data::kIgnoreIndex);
    const size_t first_supervised = ids.size() - static_cast<size_t>(o.text_tokens / 2);
    for (size_t i = first_supervised; i < ids.size(); ++i) labels[i] = ids[i];
    in.input_ids.push_back(std::move(ids));
    in.labels.push_back(std::move(labels));
    in.has_image.push_back(true);
  }
  in.pixel_values = torch::randn({o.batch, 3, c.image_size(), c.image_size()});  // (B, 3, S, S)
  in.pixel_values = in.pixel_values.to(device);
  return in;
}

// The model in --model DIR, or random weights of --config FILE's shapes drawn on the device.
model::LlavaForConditionalGeneration load_or_draw(const BenchOptions& o, torch::Dtype dtype,
                                                  torch::Device device) {
  if (!o.model_dir.empty()) return model::load_llava(o.model_dir, dtype, device);
  model::LlavaForConditionalGeneration m =
      model::empty_llava(model::LlavaConfig::load_file(o.config_file), dtype, device);
  m->init_weights(/*seed=*/0);
  return m;
}

// Peak bytes the CUDA caching allocator handed out, in MB; 0 on the CPU.
double peak_device_memory_mb(torch::Device device) {
#if SWEEP_HAVE_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);
  }
#endif
  (void)device;
  return 0.0;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace

int cmd_bench(const Args& args) {
  return train::run_tool("bench", [&]() -> int {
    const BenchOptions o = parse(args);
    torch::set_num_threads(o.threads);
    const torch::Dtype base_dtype = o.precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
    const torch::Device device = train::resolve_device(o.device);
    const auto load_start = std::chrono::steady_clock::now();
    model::LlavaForConditionalGeneration m = load_or_draw(o, base_dtype, device);
    const double load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
    const double load_rss_mb = peak_rss_mb();  // the peak so far: what loading took
    model::LoraSettings lora;
    lora.r = o.rank;
    lora.alpha = 2.0 * o.rank;
    lora.dropout = 0.0;
    m->language_model->model->set_gradient_checkpointing(o.gradient_checkpointing);
    // One job: the model carries the adapter. A pack: each job's model shares m's frozen weights.
    std::vector<model::LlavaForConditionalGeneration> jobs;
    std::vector<std::unique_ptr<train::FlatAdamW>> optimizers;
    for (int j = 0; j < o.pack; ++j) {
      model::LlavaForConditionalGeneration job =
          o.pack == 1 ? m : model::share_frozen(m, /*own_projector=*/false);
      model::apply_lora(job, lora, /*seed=*/1 + j);
      job->language_model->model->set_gradient_checkpointing(o.gradient_checkpointing);
      model::TrainableGroups groups =
          model::set_trainable(job, /*lora_mode=*/true, /*train_projector=*/false);
      optimizers.push_back(std::make_unique<train::FlatAdamW>(
          groups.lora, torch::optim::AdamWOptions(1e-4).weight_decay(0.0)));
      job->train();
      jobs.push_back(job);
    }
    std::unique_ptr<model::LanguagePack> pack;
    std::vector<size_t> active;
    if (o.pack > 1) {
      pack = std::make_unique<model::LanguagePack>(m, jobs);
      for (int j = 0; j < o.pack; ++j) active.push_back(static_cast<size_t>(j));
    }

    const model::MultimodalInputs in = random_batch(m->config(), o, device);
    double loss_value = 0;
    auto step = [&] {
      for (auto& adamw : optimizers) adamw->zero_grad();
      std::vector<model::SplicedBatch> batches;
      for (auto& job : jobs) batches.push_back(job->splice(in, /*max_length=*/0));
      // Logits at supervised positions only, for one job or the whole pack at once.
      std::vector<torch::Tensor> losses =
          pack ? pack->losses(active, batches) : std::vector<torch::Tensor>{m->loss(batches[0])};
      torch::Tensor total = losses[0];
      for (size_t j = 1; j < losses.size(); ++j) total = total + losses[j];
      total.backward();
      for (auto& adamw : optimizers) adamw->step();
      loss_value = losses[0].item<double>();
    };
    for (int i = 0; i < 2; ++i) step();  // warm-up: allocator, OpenMP pool, first-touch pages
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < o.steps; ++i) step();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / o.steps;

    if (!o.profile_file.empty()) {
      torch::autograd::profiler::RecordProfile profile(o.profile_file);
      step();
    }

    const double peak_device_mb = peak_device_memory_mb(device);
    const int64_t image_tokens = m->config().num_image_tokens();
    const double samples_per_step = static_cast<double>(o.batch) * o.pack;
    const double tokens_per_step = samples_per_step * (image_tokens + o.text_tokens);
    nlohmann::json line = {{"impl", "sweep-worker"},
                           {"model", o.model_dir.empty() ? o.config_file : o.model_dir},
                           {"device", o.device},
                           {"precision", o.precision},
                           {"threads", o.threads},
                           {"batch", o.batch},
                           {"image_tokens", image_tokens},
                           {"text_tokens", o.text_tokens},
                           {"rank", o.rank},
                           {"gradient_checkpointing", o.gradient_checkpointing},
                           {"pack", o.pack},
                           {"steps", o.steps},
                           {"step_ms", seconds * 1e3},
                           {"tokens_per_s", tokens_per_step / seconds},
                           {"samples_per_s", samples_per_step / seconds},
                           {"peak_rss_mb", peak_rss_mb()},
                           {"load_seconds", load_seconds},
                           {"load_peak_rss_mb", load_rss_mb},
                           {"peak_device_mb", peak_device_mb},
                           {"loss", loss_value}};
    std::cout << line.dump() << std::endl;
    return kExitOk;
  });
}

}  // namespace sweep::worker
