// AdamW with LLaVA's parameter groups (LLaVA's LLaVATrainer.create_optimizer): the projector gets
// its own learning rate (mm_projector_lr), everything else trainable gets learning_rate; within
// each, biases and norm weights get no weight decay (transformers' Trainer rule).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "protocol/train_params.h"
#include "worker/model/llava.h"
#include "worker/model/lora.h"
#include "worker/train/flat_adamw.h"

namespace sweep::train {

struct ParamGroupInfo {
  std::string name;  // "lora", "projector", "projector_no_decay", "other", "other_no_decay"
  double peak_lr = 0;
  size_t tensors = 0;
};

struct OptimizerSetup {
  std::unique_ptr<FlatAdamW> optimizer;  // also zeroes and clips the gradients
  std::vector<ParamGroupInfo> groups;    // same order as optimizer->param_groups()
};

// Empty groups are left out. Throws std::invalid_argument when nothing is trainable.
OptimizerSetup make_optimizer(model::LlavaForConditionalGeneration& m,
                              const model::TrainableGroups& groups, const TrainParams& p);

// Sets every group's lr to its peak rate times `factor`.
void set_lr_factor(OptimizerSetup& setup, double factor);

}  // namespace sweep::train
