#include "worker/train/optimizer_setup.h"

#include <stdexcept>
#include <unordered_set>

#include "worker/model/tensor_roles.h"

namespace sweep::train {
namespace {

// transformers excludes biases and LayerNorm/RMSNorm weights from weight decay.
bool decays(const std::string& name) {
  const model::TensorClass c = model::classify(name);
  return !c.is_bias && !c.is_norm;
}

std::unordered_set<const void*> impls_of(const std::vector<torch::Tensor>& ts) {
  std::unordered_set<const void*> out;
  for (const auto& t : ts) out.insert(t.unsafeGetTensorImpl());
  return out;
}

}  // namespace

OptimizerSetup make_optimizer(model::LlavaForConditionalGeneration& m,
                              const model::TrainableGroups& groups, const TrainParams& p) {
  const double projector_lr = p.mm_projector_lr.value_or(p.learning_rate);
  const auto lora = impls_of(groups.lora), projector = impls_of(groups.projector),
             other = impls_of(groups.other);

  // Walk named_parameters so the group order and the tensor order inside each are the model's.
  struct Draft {
    std::string name;
    double lr;
    bool decay;
    std::vector<torch::Tensor> params;
  };
  std::vector<Draft> drafts = {{"lora", p.learning_rate, true, {}},
                               {"projector", projector_lr, true, {}},
                               {"projector_no_decay", projector_lr, false, {}},
                               {"other", p.learning_rate, true, {}},
                               {"other_no_decay", p.learning_rate, false, {}}};
  for (const auto& item : m->named_parameters()) {
    const void* impl = item.value().unsafeGetTensorImpl();
    const bool d = decays(item.key());
    if (lora.count(impl))
      drafts[0].params.push_back(item.value());
    else if (projector.count(impl))
      drafts[d ? 1 : 2].params.push_back(item.value());
    else if (other.count(impl))
      drafts[d ? 3 : 4].params.push_back(item.value());
  }

  OptimizerSetup setup;
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (auto& d : drafts) {
    if (d.params.empty()) continue;
    auto opts = std::make_unique<torch::optim::AdamWOptions>(d.lr);
    opts->betas(std::make_tuple(p.adam_beta1, p.adam_beta2))
        .eps(p.adam_epsilon)
        .weight_decay(d.decay ? p.weight_decay : 0.0);
    setup.groups.push_back({d.name, d.lr, d.params.size()});
    param_groups.emplace_back(d.params, std::move(opts));
  }
  if (param_groups.empty())
    throw std::invalid_argument(
        "nothing to train: no LoRA target matched and the projector is frozen (check "
        "target_modules and train_projector)");
  torch::optim::AdamWOptions defaults(p.learning_rate);
  defaults.betas(std::make_tuple(p.adam_beta1, p.adam_beta2)).eps(p.adam_epsilon).weight_decay(0.0);
  setup.optimizer = std::make_unique<FlatAdamW>(std::move(param_groups), defaults);
  return setup;
}

void set_lr_factor(OptimizerSetup& setup, double factor) {
  auto& pgs = setup.optimizer->param_groups();
  for (size_t i = 0; i < pgs.size(); ++i)
    static_cast<torch::optim::AdamWOptions&>(pgs[i].options()).lr(setup.groups[i].peak_lr * factor);
}

}  // namespace sweep::train
