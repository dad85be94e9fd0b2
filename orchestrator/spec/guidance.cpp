// The guidance checks: one table of checks, each a test on one job's resolved params that
// returns the value to show when it fires; the jobs it fires on are tallied per value and
// become one Warning per check.
#include "orchestrator/spec/guidance.h"

#include <functional>
#include <sstream>
#include <utility>

#include "protocol/train_params.h"

namespace sweep {
namespace {

using json = nlohmann::json;

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// What a check needs besides the job's params.
struct CheckContext {
  const SweepSpec& spec;
};

struct Check {
  std::string id;
  std::string what;  // the condition, for the message: "learning rate above 0.01"
  std::string reason;
  std::string source;
  // The value to show when the check fires on these params ("0.03"); empty when it does not.
  std::function<std::string(const CheckContext&, const json&)> fires;
};

// A key's value in resolved params, or the table's default when the params lack it (jobs made
// elsewhere may leave out keys they did not set).
json param(const json& params, const char* key) {
  auto it = params.find(key);
  if (it != params.end()) return *it;
  const ParamSpec* spec = find_param_spec(key);
  return spec ? spec->default_value : json();
}

double number_of(const json& params, const char* key) { return param(params, key).get<double>(); }

long long integer_of(const json& params, const char* key) {
  return param(params, key).get<long long>();
}

bool uses_rslora(const json& params) { return param(params, "use_rslora").get<bool>(); }

// alpha/r as "0.125 (alpha 16, r 128)", or empty when `out_of_range` says it is fine.
std::string scale_text_if(const json& params, const std::function<bool(double)>& out_of_range) {
  if (uses_rslora(params)) return "";
  const double alpha = number_of(params, "lora_alpha"), r = number_of(params, "lora_r");
  if (!out_of_range(alpha / r)) return "";
  return number_text(alpha / r) + " (alpha " + number_text(alpha) + ", r " + number_text(r) + ")";
}

bool projector_trained(const json& params) { return param(params, "train_projector").get<bool>(); }

bool is_proportion_metric(const std::string& metric) {
  return metric == "val_exact_match" || metric == "val_token_acc";
}

const std::vector<Check>& checks() {
  using namespace guidance;
  static const std::vector<Check> table = {
      {"lora-scale-low",
       "LoRA scale alpha/r below " + number_text(kMinLoraScale) + " (no use_rslora)",
       "the adapter's update is multiplied by alpha/r; this small a scale barely changes the "
       "model, and with a fixed alpha it shrinks further as r grows, so larger ranks learn "
       "slower instead of better. Raise lora_alpha to r..2r, or set use_rslora: true",
       "rsLoRA (Kalajdzievski 2023, arXiv:2312.03732) on alpha/r at large ranks; recipes span "
       "alpha/r 0.25 (QLoRA, Dettmers et al. 2023: r 64, alpha 16) to 2 (LLaVA "
       "scripts/v1_5/finetune_lora.sh: r 128, alpha 256)",
       [](const CheckContext&, const json& p) {
         return scale_text_if(p, [](double s) { return s < kMinLoraScale; });
       }},
      {"lora-scale-high",
       "LoRA scale alpha/r above " + number_text(kMaxLoraScale) + " (no use_rslora)",
       "with Adam the step of the merged weight grows about linearly with alpha/r, so this "
       "acts like a learning rate several times higher than the one set; such jobs tend to "
       "diverge. Use alpha = r..2r and sweep learning_rate instead",
       "LLaVA scripts/v1_5/finetune_lora.sh (r 128, alpha 256: scale 2); PEFT LoraConfig "
       "defaults (r 8, alpha 8: scale 1)",
       [](const CheckContext&, const json& p) {
         return scale_text_if(p, [](double s) { return s > kMaxLoraScale; });
       }},
      {"learning-rate-low", "learning_rate below " + number_text(kMinLearningRate),
       "lora_B starts at zero and LoRA needs about ten times the full fine-tuning rate (LLaVA's "
       "full fine-tune uses 2e-5); at this rate the adapters barely move within max_steps and "
       "the job stays close to the base model",
       "LLaVA scripts/v1_5/finetune_lora.sh (2e-4) and finetune.sh (full, 2e-5); QLoRA "
       "(Dettmers et al. 2023: 2e-4 for 7B/13B, 1e-4 for 33B/65B)",
       [](const CheckContext&, const json& p) {
         const double lr = number_of(p, "learning_rate");
         return lr < kMinLearningRate ? number_text(lr) : "";
       }},
      {"learning-rate-high", "learning_rate above " + number_text(kMaxLearningRate),
       "Adam moves every weight by about the learning rate each step; at this rate a step is as "
       "large as a lora_A entry itself (1/sqrt(4096) = 0.016 at 7B width), so the loss "
       "usually spikes or turns NaN",
       "LLaVA scripts/v1_5/finetune_lora.sh (2e-4); QLoRA (Dettmers et al. 2023: 1e-4 to "
       "2e-4); LoRA (Hu et al. 2021: 2e-4 for GPT-2)",
       [](const CheckContext&, const json& p) {
         const double lr = number_of(p, "learning_rate");
         return lr > kMaxLearningRate ? number_text(lr) : "";
       }},
      {"projector-lr-high", "mm_projector_lr above learning_rate with train_projector",
       "the projector is already aligned in a LLaVA base; trained faster than the adapters it "
       "is rewritten before they learn to use it. LLaVA trains it ten times slower than LoRA",
       "LLaVA scripts/v1_5/finetune_lora.sh (learning_rate 2e-4, mm_projector_lr 2e-5)",
       [](const CheckContext&, const json& p) -> std::string {
         if (!projector_trained(p) || param(p, "mm_projector_lr").is_null()) return "";
         const double projector = number_of(p, "mm_projector_lr");
         const double lr = number_of(p, "learning_rate");
         if (projector <= lr) return "";
         return number_text(projector) + " > " + number_text(lr);
       }},
      {"small-effective-batch",
       "batch_size x gradient_accumulation_steps below " + std::to_string(kMinEffectiveBatch),
       "each optimiser step sees so few samples that gradient noise dominates: the loss curve "
       "is noisy, jobs are hard to tell apart, and learning rates tuned for larger batches "
       "overshoot. Raise gradient_accumulation_steps to keep the memory of a micro-batch",
       "LLaVA scripts/v1_5/finetune_lora.sh (global batch 128); QLoRA qlora.py (1 x 16)",
       [](const CheckContext&, const json& p) {
         const long long batch = integer_of(p, "batch_size");
         const long long accumulation = integer_of(p, "gradient_accumulation_steps");
         const long long effective = batch * accumulation;
         if (effective >= kMinEffectiveBatch) return std::string();
         return std::to_string(effective) + " (" + std::to_string(batch) + " x " +
                std::to_string(accumulation) + ")";
       }},
      {"eval-every-past-max-steps", "eval_every at or past max_steps",
       "the worker evaluates at step 0, every eval_every steps and after the last step, so no "
       "evaluation (and no checkpoint) happens in between: the curve has two points and "
       "save_top_k has only the last to keep. Lower eval_every, or write eval_every: 0 to say "
       "that this is meant",
       "docs/worker.md (evaluation at step 0, every eval_every steps, after the last step)",
       [](const CheckContext&, const json& p) -> std::string {
         const long long every = integer_of(p, "eval_every");
         const long long steps = integer_of(p, "max_steps");
         if (every == 0 || every < steps) return "";
         return std::to_string(every) + " vs max_steps " + std::to_string(steps);
       }},
      {"few-eval-samples",
       "eval_samples below " + std::to_string(kMinEvalSamples) + " for a proportion objective",
       "the objective is a proportion over the evaluated samples, whose standard error is up "
       "to 0.5/sqrt(eval_samples) (0.05 at 100); below that, jobs whose scores differ by 0.1 or "
       "more still rank by chance. Raise eval_samples, or 0 for the whole val set",
       "the binomial standard error sqrt(p(1-p)/n) <= 0.5/sqrt(n)",
       [](const CheckContext& c, const json& p) -> std::string {
         if (!is_proportion_metric(c.spec.objective.metric)) return "";
         const long long n = integer_of(p, "eval_samples");
         if (n == 0 || n >= kMinEvalSamples) return "";  // 0: the whole val set, size unknown
         return std::to_string(n) + " (" + c.spec.objective.metric + ")";
       }},
  };
  return table;
}

// The jobs one check fired on, and how many per shown value, in order of first appearance.
struct Tally {
  std::vector<std::string> hashes;
  std::vector<std::pair<std::string, size_t>> values;

  void add(const std::string& hash, const std::string& value) {
    hashes.push_back(hash);
    for (auto& [v, n] : values) {
      if (v == value) {
        ++n;
        return;
      }
    }
    values.emplace_back(value, 1);
  }

  // "0.03 (4 jobs), 0.05 (4 jobs)"; a single value is shown without its count.
  std::string values_text() const {
    if (values.size() == 1) return values[0].first;
    std::string s;
    for (const auto& [v, n] : values)
      s += (s.empty() ? "" : ", ") + v + " (" + std::to_string(n) + (n == 1 ? " job)" : " jobs)");
    return s;
  }
};

Warning make_warning(const Check& check, const Tally& tally, size_t total) {
  Warning w;
  w.id = check.id;
  w.message = check.what + " in " + std::to_string(tally.hashes.size()) + " of " +
              std::to_string(total) + (total == 1 ? " job: " : " jobs: ") + tally.values_text();
  w.reason = check.reason;
  w.source = check.source;
  w.job_hashes = tally.hashes;
  return w;
}

}  // namespace

std::vector<Warning> guidance_warnings(const SweepSpec& spec,
                                       const std::vector<ExpandedJob>& jobs) {
  const CheckContext context{spec};
  size_t total = 0;
  for (const ExpandedJob& job : jobs) total += job.is_duplicate() ? 0 : 1;
  std::vector<Warning> warnings;
  for (const Check& check : checks()) {
    Tally tally;
    for (const ExpandedJob& job : jobs) {
      if (job.is_duplicate()) continue;
      std::string value = check.fires(context, job.params);
      if (!value.empty()) tally.add(job.hash, value);
    }
    if (!tally.hashes.empty()) warnings.push_back(make_warning(check, tally, total));
  }
  return warnings;
}

json warning_to_json(const Warning& warning) {
  return {{"id", warning.id},
          {"message", warning.message},
          {"reason", warning.reason},
          {"source", warning.source},
          {"jobs", warning.job_hashes}};
}

}  // namespace sweep
