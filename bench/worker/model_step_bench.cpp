// Forward+backward step time of the LoRA-wrapped LLaVA (tiny and small presets), fp32 vs bf16
// frozen base, 1 vs 2 threads, with achieved GFLOP/s next to a matmul peak measured in the same
// run (so the ratio, not the absolute number, is what to compare across machines).
// usage: model_step_bench [--steps N] [--batch B] [--text-tokens T] [--presets tiny,small]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "worker/model/llava.h"
#include "worker/model/lora.h"

namespace {

using sweep::model::LlavaConfig;
using sweep::model::LlavaForConditionalGeneration;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Peak of one n x n matmul in `dtype`, best of a few runs.
double matmul_gflops(torch::Dtype dtype, int64_t n = 1024) {
  auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
  torch::mm(a, b);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    auto c = torch::mm(a, b);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * double(n * n * n) / best / 1e9;
}

// Model FLOPs of one LoRA step: the language model runs forward and backward to its inputs
// (~2x forward; weight gradients only for the small adapters), the frozen vision tower forward
// only.
double step_flops(const LlavaConfig& c, int64_t B, int64_t T) {
  const auto& t = c.text;
  const auto& v = c.vision;
  double kv = double(t.num_key_value_heads * t.head_dim);
  double per_tok_lm = t.num_hidden_layers * 2.0 *
                          (2.0 * t.hidden_size * t.hidden_size + 2.0 * t.hidden_size * kv +
                           3.0 * t.hidden_size * t.intermediate_size) +
                      2.0 * t.hidden_size * t.vocab_size;
  double attn = t.num_hidden_layers * 4.0 * double(T) * double(T) * t.hidden_size;  // QK^T + PV
  double lm = B * (per_tok_lm * T + attn);
  double L = double(v.num_patches() + 1);
  double per_tok_v =
      v.num_hidden_layers * 2.0 *
      (4.0 * v.hidden_size * v.hidden_size + 2.0 * v.hidden_size * v.intermediate_size);
  double vision = B * (per_tok_v * L + v.num_hidden_layers * 4.0 * L * L * v.hidden_size);
  return 2.0 * lm + vision;
}

sweep::model::MultimodalInputs batch(const LlavaConfig& c, int64_t B, int64_t text_tokens) {
  sweep::model::MultimodalInputs in;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> ids = {1, sweep::model::kImageTokenIndex};
    for (int64_t i = 0; i < text_tokens - 1; ++i)
      ids.push_back(3 + (i * 7 + b) % (c.text.vocab_size - 3));
    in.input_ids.push_back(ids);
    in.labels.push_back(ids);
    in.labels.back()[1] = sweep::model::kIgnoreIndex;
    in.has_image.push_back(true);
  }
  in.pixel_values = torch::randn({B, 3, c.image_size(), c.image_size()});
  return in;
}

double step_seconds(const std::string& preset, torch::Dtype base, int64_t B, int64_t text_tokens,
                    int steps) {
  LlavaConfig c = sweep::model::preset_config(preset, 512);
  LlavaForConditionalGeneration m(c, 1);
  m->to_precision(base, torch::kCPU);
  sweep::model::LoraSettings s;
  s.dropout = 0.05;
  sweep::model::apply_lora(m, s, 1);
  sweep::model::set_trainable(m, /*lora_mode=*/true, /*train_projector=*/true);
  m->train();
  auto in = batch(c, B, text_tokens);
  auto run = [&] {
    auto b = m->splice(in, 2048);
    auto loss = sweep::model::causal_lm_loss(m->forward(b), b.labels);
    loss.backward();
    m->zero_grad();
  };
  run();  // warm-up
  auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) run();
  return seconds_since(t0) / steps;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 3;
  int64_t B = 4, text_tokens = 64;
  std::vector<std::string> presets = {"tiny", "small"};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--steps")
      steps = std::atoi(v.c_str());
    else if (k == "--batch")
      B = std::atoll(v.c_str());
    else if (k == "--text-tokens")
      text_tokens = std::atoll(v.c_str());
    else if (k == "--presets")
      presets = v == "tiny"    ? std::vector<std::string>{"tiny"}
                : v == "small" ? std::vector<std::string>{"small"}
                               : presets;
  }
  std::printf(
      "LoRA step (r=8, q/k/v/o/gate/up/down, projector trained), batch %lld, %lld text tokens + "
      "image\n",
      (long long)B, (long long)text_tokens);
  std::printf("%-6s %-5s %-7s %10s %10s %12s %12s %8s\n", "preset", "base", "threads", "params(M)",
              "step(ms)", "GFLOP/s", "mm peak", "of peak");
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    double peak32 = matmul_gflops(torch::kFloat32), peak16 = matmul_gflops(torch::kBFloat16);
    for (const auto& preset : presets) {
      LlavaConfig c = sweep::model::preset_config(preset, 512);
      int64_t params = 0;
      for (auto& p : LlavaForConditionalGeneration(c)->parameters()) params += p.numel();
      int64_t T = text_tokens + c.num_image_tokens();
      double flops = step_flops(c, B, T);
      for (auto base : {torch::kFloat32, torch::kBFloat16}) {
        double sec = step_seconds(preset, base, B, text_tokens, steps);
        double peak = base == torch::kFloat32 ? peak32 : peak16;
        std::printf("%-6s %-5s %-7d %10.2f %10.1f %12.2f %12.2f %7.0f%%\n", preset.c_str(),
                    base == torch::kFloat32 ? "fp32" : "bf16", threads, params / 1e6, sec * 1e3,
                    flops / sec / 1e9, peak, 100.0 * flops / sec / 1e9 / peak);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
