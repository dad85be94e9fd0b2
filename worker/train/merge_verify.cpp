#include "worker/train/merge_verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>
#include <stdexcept>

#include <torch/torch.h>

#include "data/image.h"
#include "data/llava_json.h"
#include "data/preprocess.h"
#include "data/tokenizer.h"
#include "worker/model/checkpoint.h"
#include "worker/model/tensor_store.h"
#include "worker/train/collate.h"
#include "worker/train/eval_subset.h"
#include "worker/train/evaluator.h"
#include "worker/train/model_setup.h"

namespace sweep::train {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSyntheticLength = 24;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

torch::ScalarType scalar_type_of(const std::string& dtype) {
  if (dtype == "bf16") return torch::kBFloat16;
  if (dtype == "fp16") return torch::kFloat16;
  return torch::kFloat32;
}

// The K inputs the models are compared on, as the loader would give them.
std::vector<data::LoadedSample> comparison_samples(const MergeCheckInputs& in, int image_size,
                                                   int64_t vocab_size) {
  std::vector<data::LoadedSample> out;
  if (in.val_data.empty()) {  // fixed token sequences, text only
    std::mt19937_64 rng(in.seed);
    std::uniform_int_distribution<int64_t> id(3, std::max<int64_t>(3, vocab_size - 1));
    for (int k = 0; k < in.samples; ++k) {
      data::LoadedSample s;
      s.index = static_cast<size_t>(k);
      s.id = "synthetic-" + std::to_string(k);
      s.tokens.input_ids.push_back(1);
      for (int64_t t = 1; t < kSyntheticLength; ++t) s.tokens.input_ids.push_back(id(rng));
      s.tokens.labels = s.tokens.input_ids;
      out.push_back(std::move(s));
    }
    return out;
  }
  const data::Tokenizer tok = data::Tokenizer::load(in.base_dir);
  const std::vector<data::Sample> samples = data::load_llava_json(in.val_data);
  for (size_t i : eval_subset(samples.size(), in.samples, in.seed)) {
    const data::Sample& s = samples[i];
    data::LoadedSample l;
    l.index = i;
    l.id = s.id.empty() ? std::to_string(i) : s.id;
    const bool has_image = !s.image.empty();
    l.tokens = data::tokenize_sample(s, tok, has_image, in.max_length);
    if (has_image)
      l.pixels =
          data::clip_preprocess(data::decode_image((fs::path(in.image_folder) / s.image).string()),
                                image_size, in.pad_to_square);
    out.push_back(std::move(l));
  }
  return out;
}

// Each sample's logits alone, (T, V) fp32 on the CPU.
std::vector<torch::Tensor> logits_of(model::LlavaForConditionalGeneration& m,
                                     const std::vector<data::LoadedSample>& samples,
                                     int64_t max_length) {
  m->eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (const data::LoadedSample& s : samples) {
    model::MultimodalInputs in = collate({s}, m->config().image_size(), m->device());
    model::SplicedBatch b = m->splice(in, max_length);
    out.push_back(m->forward(b)[0].to(torch::kFloat32).cpu());  // (T, V)
  }
  return out;
}

std::optional<double> val_loss_of(model::LlavaForConditionalGeneration& m,
                                  const MergeCheckInputs& in) {
  if (in.val_data.empty()) return std::nullopt;
  EvalOptions eo;
  eo.image_folder = in.image_folder;
  eo.image_size = m->config().image_size();
  eo.pad_to_square = in.pad_to_square;
  eo.max_length = in.max_length;
  eo.max_samples = in.samples;
  eo.seed = in.seed;
  eo.generate = false;
  Evaluator evaluator(data::load_llava_json(in.val_data), data::Tokenizer::load(in.base_dir), eo);
  return evaluator.run(m).val_loss;
}

// The written tensors not in `dtype`, listed.
std::string wrong_dtypes(const std::string& dir, const std::string& dtype) {
  const model::TensorStore store = model::TensorStore::open_dir(dir);
  std::string out;
  int n = 0;
  for (const auto& [name, t] : store.tensors()) {
    if (t.scalar_type() == scalar_type_of(dtype)) continue;
    if (++n <= 5) out += "\n    " + name + ": " + c10::toString(t.scalar_type());
  }
  if (n > 5) out += "\n    ... " + std::to_string(n - 5) + " more";
  return n ? "tensors not in " + dtype + " (" + std::to_string(n) + "):" + out : "";
}

}  // namespace

MergeTolerance merge_tolerance(const std::string& dtype) {
  // fp32: the merged weight W + s*B@A and the adapter's x@W + s*(x@A)@B differ only by the order
  // of fp32 roundings (relative ~1e-7 per weight). bf16 keeps 8 bits of mantissa (relative 2^-9
  // per weight), fp16 11 bits (2^-12): the logits move by that rounding accumulated over the
  // layers, so the bounds are looser, fp16 about 8x tighter than bf16.
  if (dtype == "fp32") return {1e-3, 1e-6, 1e-4};
  // On the tiny demo model bf16 measured 4e-3 / 2.6e-7 / 4e-5 and fp16 4.6e-4 / 4.6e-9 / 1.3e-5;
  // the bounds leave room for a 7B model's larger logits and deeper stack while a lost or
  // altered adapter still fails (one projection shifted by 0.05: mean KL 7e-3).
  if (dtype == "bf16") return {0.5, 2e-3, 1e-2};
  if (dtype == "fp16") return {0.1, 3e-4, 2e-3};
  throw std::invalid_argument("--dtype must be fp32, bf16 or fp16, got '" + dtype + "'");
}

std::string MergeCheck::report() const {
  auto verdict = [](bool ok) { return ok ? "ok" : "FAILED"; };
  std::ostringstream out;
  out << "verify: reload: "
      << (reload_ok ? "every tensor present, none unexpected, dtype as asked" : reload_error)
      << "  " << verdict(reload_ok) << "\n";
  if (!reload_ok) return out.str();
  out << "verify: logits over " << samples << " samples (" << positions
      << " positions): max |diff| " << num(max_abs_logit) << " (tolerance "
      << num(tolerance.max_abs_logit) << "), mean KL " << num(mean_kl) << " (tolerance "
      << num(tolerance.mean_kl) << "), max KL " << num(max_kl) << "  "
      << verdict(max_abs_logit <= tolerance.max_abs_logit && mean_kl <= tolerance.mean_kl) << "\n";
  if (val_loss_adapter && val_loss_merged) {
    const double d = std::abs(*val_loss_adapter - *val_loss_merged);
    out << "verify: val_loss adapter on base " << num(*val_loss_adapter) << ", merged "
        << num(*val_loss_merged) << ", |diff| " << num(d) << " (tolerance "
        << num(tolerance.val_loss) << ")  " << verdict(d <= tolerance.val_loss) << "\n";
  } else {
    out << "verify: val_loss not compared (no val data known: give --data and --image-folder)\n";
  }
  out << "verify: the adapter's own effect on the base's logits: max |diff| "
      << num(adapter_effect_max_abs) << "\n";
  return out.str();
}

MergeCheck verify_merge(const MergeCheckInputs& in) {
  MergeCheck r;
  r.tolerance = merge_tolerance(in.dtype);
  std::vector<data::LoadedSample> samples;
  std::vector<torch::Tensor> reference, merged, base;
  {
    model::LlavaForConditionalGeneration m =
        load_model_with_checkpoint(in.base_dir, in.checkpoint, torch::kFloat32, torch::kCPU,
                                   /*base_flag=*/"");  // the caller checked the base
    samples = comparison_samples(in, m->config().image_size(), m->config().text.vocab_size);
    if (samples.empty()) throw std::runtime_error(in.val_data + " holds no samples to compare on");
    reference = logits_of(m, samples, in.max_length);
    r.val_loss_adapter = val_loss_of(m, in);
  }
  try {
    model::LlavaForConditionalGeneration m =
        model::load_llava(in.merged_dir, torch::kFloat32, torch::kCPU);
    r.reload_error = wrong_dtypes(in.merged_dir, in.dtype);
    r.reload_ok = r.reload_error.empty();
    merged = logits_of(m, samples, in.max_length);
    r.val_loss_merged = val_loss_of(m, in);
  } catch (const std::exception& e) {
    r.reload_ok = false;
    r.reload_error = e.what();
  }
  if (!r.reload_ok) {
    r.failures.push_back("reload: " + r.reload_error);
    return r;
  }
  {
    model::LlavaForConditionalGeneration m =
        model::load_llava(in.base_dir, torch::kFloat32, torch::kCPU);
    base = logits_of(m, samples, in.max_length);
  }
  r.samples = static_cast<int>(samples.size());
  double kl_sum = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const torch::Tensor& a = reference[i];  // (T, V)
    const torch::Tensor& b = merged[i];     // (T, V)
    r.max_abs_logit = std::max(r.max_abs_logit, (a - b).abs().max().item<double>());
    r.adapter_effect_max_abs =
        std::max(r.adapter_effect_max_abs, (a - base[i]).abs().max().item<double>());
    torch::Tensor la = torch::log_softmax(a.to(torch::kFloat64), -1);  // (T, V)
    torch::Tensor lb = torch::log_softmax(b.to(torch::kFloat64), -1);  // (T, V)
    torch::Tensor kl = (la.exp() * (la - lb)).sum(-1);                 // (T)
    kl_sum += kl.sum().item<double>();
    r.max_kl = std::max(r.max_kl, kl.max().item<double>());
    r.positions += a.size(0);
  }
  r.mean_kl = r.positions ? kl_sum / static_cast<double>(r.positions) : 0.0;
  const MergeTolerance& t = r.tolerance;
  if (!(r.max_abs_logit <= t.max_abs_logit))
    r.failures.push_back("logits: max |diff| " + num(r.max_abs_logit) + " > " +
                         num(t.max_abs_logit));
  if (!(r.mean_kl <= t.mean_kl))
    r.failures.push_back("logits: mean KL " + num(r.mean_kl) + " > " + num(t.mean_kl));
  if (r.val_loss_adapter && r.val_loss_merged) {
    const double d = std::abs(*r.val_loss_adapter - *r.val_loss_merged);
    if (!(d <= t.val_loss))
      r.failures.push_back("val_loss: |diff| " + num(d) + " > " + num(t.val_loss));
  }
  return r;
}

}  // namespace sweep::train
