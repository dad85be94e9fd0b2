#include "worker/train/flat_adamw.h"

#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>

namespace sweep::train {
namespace {

using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

// The key AdamW files a tensor's state under: its TensorImpl's address, as text in LibTorch 1.x
// (c10::guts::to_string of the pointer) and as the pointer itself in 2.x.
using StateKey = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

template <typename Key = StateKey>
Key state_key(const torch::Tensor& p) {
  void* impl = p.unsafeGetTensorImpl();
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << impl;
    return os.str();
  } else {
    return impl;
  }
}

// The view of a flat buffer that holds a tensor of `like`'s shape at `offset`.
torch::Tensor slot(const torch::Tensor& buffer, int64_t offset, const torch::Tensor& like) {
  return buffer.narrow(0, offset, like.numel()).view(like.sizes());
}

}  // namespace

FlatAdamW::FlatAdamW(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                     AdamWOptions defaults, int64_t max_buffer_elements)
    : AdamW(std::move(param_groups), std::move(defaults)),
      max_buffer_elements_(max_buffer_elements) {
  for (const auto& group : this->param_groups())
    if (static_cast<const AdamWOptions&>(group.options()).amsgrad())
      throw std::invalid_argument("FlatAdamW: amsgrad is not supported");
  build_chunks();
}

void FlatAdamW::build_chunks() {
  chunks_.clear();
  for (size_t g = 0; g < param_groups().size(); ++g) {
    // One chunk per (dtype, device) in the group, in the group's order of first appearance, and
    // a new one past max_buffer_elements_: binding copies a chunk's tensors into a new buffer
    // before their old storage is freed, so the cap bounds that transient (a full fine-tune's
    // groups are the whole model).
    std::map<std::pair<int, std::string>, size_t> open;
    for (const torch::Tensor& p : param_groups()[g].params()) {
      if (!p.requires_grad()) throw std::invalid_argument("FlatAdamW: a parameter needs no grad");
      const auto key = std::make_pair(static_cast<int>(p.scalar_type()), p.device().str());
      auto it = open.find(key);
      if (it == open.end() || chunks_[it->second].elements + p.numel() > max_buffer_elements_) {
        chunks_.emplace_back();
        chunks_.back().group = g;
        it = open.insert_or_assign(key, chunks_.size() - 1).first;
      }
      chunks_[it->second].params.push_back(p);
      chunks_[it->second].elements += p.numel();
    }
  }
  for (Chunk& c : chunks_) bind(c);
}

void FlatAdamW::bind(Chunk& c) {
  torch::NoGradGuard no_grad;
  int64_t total = 0;
  c.offsets.clear();
  for (const torch::Tensor& p : c.params) {
    c.offsets.push_back(total);
    total += p.numel();
  }
  const torch::TensorOptions options = c.params.front().options();
  c.param = torch::empty({total}, options);
  c.grad = torch::zeros({total}, options);
  c.exp_avg = torch::zeros({total}, options);
  c.exp_avg_sq = torch::zeros({total}, options);
  for (size_t i = 0; i < c.params.size(); ++i) {
    torch::Tensor p = c.params[i];
    const int64_t at = c.offsets[i];
    slot(c.param, at, p).copy_(p.detach());
    if (p.grad().defined()) slot(c.grad, at, p).copy_(p.grad());
    p.set_data(slot(c.param, at, p));
    p.mutable_grad() = slot(c.grad, at, p);
    auto found = state().find(state_key(p));
    if (found != state().end()) {
      auto& s = static_cast<AdamWParamState&>(*found->second);
      slot(c.exp_avg, at, p).copy_(s.exp_avg());
      slot(c.exp_avg_sq, at, p).copy_(s.exp_avg_sq());
      s.exp_avg(slot(c.exp_avg, at, p));
      s.exp_avg_sq(slot(c.exp_avg_sq, at, p));
    } else {
      auto s = std::make_unique<AdamWParamState>();
      s->step(0);
      s->exp_avg(slot(c.exp_avg, at, p));
      s->exp_avg_sq(slot(c.exp_avg_sq, at, p));
      state()[state_key(p)] = std::move(s);
    }
  }
}

bool FlatAdamW::bound(const Chunk& c) const {
  for (size_t i = 0; i < c.params.size(); ++i) {
    const torch::Tensor& p = c.params[i];
    const size_t bytes = static_cast<size_t>(c.offsets[i]) * p.element_size();
    if (p.data_ptr() != static_cast<char*>(c.param.data_ptr()) + bytes) return false;
    if (!p.grad().defined() || p.grad().data_ptr() != static_cast<char*>(c.grad.data_ptr()) + bytes)
      return false;
  }
  return true;
}

AdamWParamState& FlatAdamW::state_of(const torch::Tensor& p) {
  return static_cast<AdamWParamState&>(*state().at(state_key(p)));
}

void FlatAdamW::zero_grad() {
  for (Chunk& c : chunks_) {
    if (!bound(c)) bind(c);
    c.grad.zero_();
  }
}

double FlatAdamW::clip_grad_norm(double max_norm) {
  torch::NoGradGuard no_grad;
  for (Chunk& c : chunks_)
    if (!bound(c)) bind(c);
  // The norm exactly as clip_grad_norm_ sums it (per tensor, in the optimizer's order, then the
  // norm of those), so clipping rounds as it always did; only the scaling is one operator per
  // buffer, and multiplying by the same scalar is the same product element by element.
  std::vector<torch::Tensor> norms;
  for (const auto& group : param_groups())
    for (const torch::Tensor& p : group.params()) norms.push_back(p.grad().norm());
  if (norms.empty()) return 0.0;
  const torch::Tensor total = norms.size() == 1 ? norms.front() : torch::stack(norms).norm();
  const torch::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (Chunk& c : chunks_) c.grad.mul_(coef);
  return total.item<double>();
}

torch::Tensor FlatAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (Chunk& c : chunks_) {
    if (!bound(c)) bind(c);
    const auto& options = static_cast<const AdamWOptions&>(param_groups()[c.group].options());
    // Every tensor of a chunk has taken the same steps (they are stepped together); AdamW keeps
    // the count per tensor, so each is advanced.
    int64_t step = 0;
    for (const torch::Tensor& p : c.params) {
      AdamWParamState& s = state_of(p);
      s.step(s.step() + 1);
      step = s.step();
    }
    // torch::optim::AdamW::step, for a whole buffer at once.
    if (options.weight_decay() != 0) c.param.mul_(1 - options.lr() * options.weight_decay());
    const double beta1 = std::get<0>(options.betas()), beta2 = std::get<1>(options.betas());
    const double bias_correction1 = 1 - std::pow(beta1, step);
    const double bias_correction2 = 1 - std::pow(beta2, step);
    c.exp_avg.mul_(beta1).add_(c.grad, 1 - beta1);
    c.exp_avg_sq.mul_(beta2).addcmul_(c.grad, c.grad, 1 - beta2);
    const torch::Tensor denom =
        (c.exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(options.eps());
    c.param.addcdiv_(c.exp_avg, denom, -options.lr() / bias_correction1);
  }
  return loss;
}

void FlatAdamW::load(torch::serialize::InputArchive& archive) {
  AdamW::load(archive);  // fresh per-tensor state tensors
  for (Chunk& c : chunks_) bind(c);
}

}  // namespace sweep::train
