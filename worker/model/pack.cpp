// Shapes: B_i samples of job i, T_i its padded length, T = max T_i, H text width, N_i its
// supervised positions, N = sum N_i.
#include "worker/model/pack.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

#include "worker/model/lora.h"
#include "worker/model/tensor_roles.h"

namespace sweep::model {
namespace {

// Every LoraLinear under `m` by path.
std::map<std::string, LoraLinearImpl*> linears_by_path(LlavaForConditionalGeneration& m) {
  std::map<std::string, LoraLinearImpl*> out;
  for (const auto& item : m->named_modules(/*name_prefix=*/"", /*include_self=*/false))
    if (auto* lin = dynamic_cast<LoraLinearImpl*>(item.value().get())) out[item.key()] = lin;
  return out;
}

// x [B, T_i, ...] right-padded with `value` to T along dim 1 (any dtype, bool included).
torch::Tensor pad_time(const torch::Tensor& x, int64_t T, double value) {
  const int64_t missing = T - x.size(1);
  if (missing == 0) return x;
  std::vector<int64_t> shape = x.sizes().vec();
  shape[1] = missing;
  return torch::cat({x, torch::full(shape, value, x.options())}, 1);
}

}  // namespace

LlavaForConditionalGeneration share_frozen(LlavaForConditionalGeneration& base,
                                           bool own_projector) {
  LlavaForConditionalGeneration m = empty_llava(base->config(), base->base_dtype(), base->device());
  auto base_params = base->named_parameters();
  torch::NoGradGuard no_grad;
  for (auto& item : m->named_parameters()) {
    const TensorClass c = classify(item.key());
    if (c.is_lora())
      throw std::runtime_error("share_frozen: the base model carries a LoRA adapter (" +
                               item.key() + ")");
    const torch::Tensor& from = base_params[item.key()];
    const bool copy = own_projector && c.role == TensorRole::kProjector;
    item.value().set_data(copy ? from.detach().clone() : from.detach());
  }
  auto base_buffers = base->named_buffers();
  for (auto& item : m->named_buffers()) item.value().set_data(base_buffers[item.key()].detach());
  return m;
}

LanguagePack::LanguagePack(LlavaForConditionalGeneration base,
                           std::vector<LlavaForConditionalGeneration> members)
    : base_(std::move(base)), members_(std::move(members)), route_(std::make_unique<PackRoute>()) {
  std::vector<std::map<std::string, LoraLinearImpl*>> member_linears;
  for (auto& m : members_) member_linears.push_back(linears_by_path(m));
  std::vector<at::Generator> generators;  // replayed by checkpointed layers
  for (auto& m : members_) generators.push_back(lora_dropout_generator(m));
  for (auto& [path, lin] : linears_by_path(base_)) {
    std::vector<LoraLinearImpl*> peers;
    for (size_t i = 0; i < members_.size(); ++i) {
      LoraLinearImpl* peer = member_linears[i].at(path);
      if (peer->has_lora()) peers.push_back(peer);
    }
    if (peers.empty()) continue;
    if (peers.size() != members_.size())
      throw std::runtime_error("packed jobs adapt different modules (" + path +
                               "): their target_modules must be equal");
    lin->set_pack(std::move(peers), route_.get());
    routed_.push_back(lin);
  }
  if (routed_.empty()) throw std::runtime_error("packed jobs carry no LoRA adapter");
  base_->language_model->model->set_dropout_generators(std::move(generators));
}

LanguagePack::~LanguagePack() {
  for (LoraLinearImpl* lin : routed_) lin->set_pack({}, nullptr);
  base_->language_model->model->set_dropout_generators({});
}

std::vector<torch::Tensor> LanguagePack::losses(const std::vector<size_t>& active,
                                                const std::vector<SplicedBatch>& batches) {
  if (active.size() != batches.size() || active.empty())
    throw std::invalid_argument("LanguagePack::losses: one batch per active member");
  PackRoute& route = *route_;
  route = PackRoute{};
  route.members = active;
  for (const SplicedBatch& b : batches) {
    route.samples.push_back(b.inputs_embeds.size(0));
    route.lengths.push_back(b.inputs_embeds.size(1));
    // N_i, read on the host: the split of the rows below needs it (supervised_positions reads
    // the positions back anyway).
    route.rows.push_back(b.labels.slice(1, 1).ne(kIgnoreIndex).sum().item<int64_t>());
  }
  const SplicedBatch all = concat_batches(batches);                 // [sum B_i, T, H]
  const SupervisedPositions at = supervised_positions(all.labels);  // rows grouped by member
  base_->train();
  const torch::Tensor token = token_losses(base_->logits_at(all, at.rows), at.targets);  // [N]
  std::vector<torch::Tensor> out;
  const std::vector<torch::Tensor> parts = token.split_with_sizes(route.rows, 0);
  for (size_t i = 0; i < parts.size(); ++i)
    out.push_back(parts[i].sum() / static_cast<double>(std::max<int64_t>(route.rows[i], 1)));
  return out;
}

SplicedBatch concat_batches(const std::vector<SplicedBatch>& batches) {
  int64_t T = 1;
  for (const SplicedBatch& b : batches) T = std::max(T, b.inputs_embeds.size(1));
  std::vector<torch::Tensor> embeds, masks, labels, positions;
  for (const SplicedBatch& b : batches) {
    embeds.push_back(pad_time(b.inputs_embeds, T, 0.0));
    masks.push_back(pad_time(b.attention_mask, T, 0.0));
    labels.push_back(pad_time(b.labels, T, static_cast<double>(kIgnoreIndex)));
    positions.push_back(pad_time(b.position_ids, T, 0.0));
  }
  SplicedBatch out;
  out.inputs_embeds = torch::cat(embeds, 0);
  out.attention_mask = torch::cat(masks, 0);
  out.labels = torch::cat(labels, 0);
  out.position_ids = torch::cat(positions, 0);
  return out;
}

}  // namespace sweep::model
