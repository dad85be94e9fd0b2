#include "worker/train/pack_step.h"

#include <algorithm>
#include <stdexcept>

namespace sweep::train {

std::vector<PackStepOutcome> pack_step(model::LanguagePack& pack, const std::vector<size_t>& active,
                                       const std::vector<Trainer*>& trainers) {
  if (active.size() != trainers.size())
    throw std::invalid_argument("pack_step: one trainer per active member");
  int rounds = 0;
  for (Trainer* t : trainers) {
    t->begin_step();
    rounds = std::max(rounds, t->micro_batches());
  }
  for (int round = 0; round < rounds; ++round) {
    std::vector<size_t> members;
    std::vector<Trainer*> in_round;
    std::vector<model::SplicedBatch> batches;
    for (size_t i = 0; i < trainers.size(); ++i) {
      if (round >= trainers[i]->micro_batches()) continue;
      members.push_back(active[i]);
      in_round.push_back(trainers[i]);
      batches.push_back(trainers[i]->next_micro_batch());
    }
    std::vector<torch::Tensor> losses = pack.losses(members, batches);
    // Each job's adapters only see their own loss: the sum's gradient with respect to them is
    // the gradient of that job's loss / its accumulation steps, as in its own step().
    torch::Tensor total;
    for (size_t i = 0; i < losses.size(); ++i) {
      torch::Tensor scaled = losses[i] / in_round[i]->micro_batches();
      total = total.defined() ? total + scaled : scaled;
    }
    total.backward();
    for (size_t i = 0; i < losses.size(); ++i) in_round[i]->add_micro_loss(losses[i]);
  }
  std::vector<PackStepOutcome> out(trainers.size());
  for (size_t i = 0; i < trainers.size(); ++i) {
    try {
      out[i].result = trainers[i]->finish_step();
    } catch (const DivergedError& e) {
      out[i].diverged = e.what();
    }
  }
  return out;
}

}  // namespace sweep::train
