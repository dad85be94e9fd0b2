#include "worker/train/learning_check.h"

#include <cmath>
#include <sstream>
#include <string>

#include <torch/torch.h>

#include "worker/model/tensor_roles.h"

namespace sweep::train {
namespace {

std::string number(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

double mean(const std::vector<double>& v, size_t begin, size_t end) {
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += v[i];
  return sum / static_cast<double>(end - begin);
}

}  // namespace

LearningCheckEvent judge_learning(const LearningCheckInputs& in) {
  LearningCheckEvent e;
  e.step = in.step;
  e.lora_b_norm = in.lora_b_norm;
  e.lora_grad_norm = in.lora_grad_norm;
  std::vector<std::string> reasons;
  if (in.lora_b_norm && !(std::isfinite(*in.lora_b_norm) && *in.lora_b_norm > 0)) {
    reasons.push_back("LoRA B norm is " + number(*in.lora_b_norm) +
                      ": the adapters never moved from their zero start (learning_rate 0 or too "
                      "low, or no update reached them)");
  }
  if (!in.lora_grad_norm) {
    reasons.push_back("no gradient reached the adapters");
  } else if (!(std::isfinite(*in.lora_grad_norm) && *in.lora_grad_norm > 0)) {
    reasons.push_back("LoRA gradient norm is " + number(*in.lora_grad_norm) +
                      ": nothing flows back into the adapters (every label masked, or a "
                      "collapsed run)");
  }
  bool finite = true;
  for (double loss : in.losses) finite = finite && std::isfinite(loss);
  if (!finite) reasons.push_back("the train loss is NaN or infinite");
  const size_t n = in.losses.size();
  if (n >= 1) {
    const size_t half = n >= 2 ? n / 2 : 1;
    e.loss_first = mean(in.losses, 0, half);
    e.loss_last = mean(in.losses, n - half, n);
  }
  if (n >= 2 && finite) {
    const double change = std::fabs(*e.loss_last - *e.loss_first);
    if (!(change > kLossMovedRelative * std::fabs(*e.loss_first))) {
      reasons.push_back("the train loss did not move: mean " + number(*e.loss_first) +
                        " over the first " + std::to_string(n / 2) + " steps, " +
                        number(*e.loss_last) + " over the last " + std::to_string(n / 2) +
                        " (a change of at most " + number(kLossMovedRelative * 100) + "%)");
    }
  }
  e.passed = reasons.empty();
  for (size_t i = 0; i < reasons.size(); ++i) e.reason += (i ? "; " : "") + reasons[i];
  return e;
}

std::pair<std::optional<double>, std::optional<double>> lora_norms(
    model::LlavaForConditionalGeneration& m) {
  torch::NoGradGuard no_grad;
  double b_sq = 0, grad_sq = 0;
  bool any_b = false, any_grad = false;
  for (const auto& item : m->named_parameters()) {
    const model::TensorClass c = model::classify(item.key());
    if (!c.is_lora()) continue;
    const torch::Tensor& p = item.value();
    if (c.role == model::TensorRole::kLoraB) {
      b_sq += p.detach().to(torch::kFloat64).pow(2).sum().item<double>();
      any_b = true;
    }
    if (p.grad().defined()) {
      grad_sq += p.grad().detach().to(torch::kFloat64).pow(2).sum().item<double>();
      any_grad = true;
    }
  }
  std::optional<double> b, grad;
  if (any_b) b = std::sqrt(b_sq);
  if (any_grad) grad = std::sqrt(grad_sq);
  return {b, grad};
}

LearningCheck::LearningCheck(const TrainParams& params, int first_step)
    : check_step_(params.learning_check_step()), lora_(params.mode == "lora") {
  if (first_step >= check_step_) check_step_ = 0;  // checked by an earlier attempt
}

bool LearningCheck::record(const StepResult& r) {
  if (check_step_ <= 0 || r.step > check_step_) return false;
  losses_.push_back(r.loss);
  return r.step == check_step_;
}

LearningCheckEvent LearningCheck::run(model::LlavaForConditionalGeneration& m,
                                      const StepResult& r) const {
  LearningCheckInputs in;
  in.step = r.step;
  in.losses = losses_;
  if (lora_) {
    std::tie(in.lora_b_norm, in.lora_grad_norm) = lora_norms(m);
  } else {
    in.lora_grad_norm = r.grad_norm;
  }
  return judge_learning(in);
}

}  // namespace sweep::train
