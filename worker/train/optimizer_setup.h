// AdamW with LLaVA's parameter groups (LLaVA's LLaVATrainer.create_optimizer): the projector gets
// its own learning rate (mm_projector_lr), everything else trainable gets learning_rate; within
// each, biases and norm weights get no weight decay (transformers' Trainer rule).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/optim/adamw.h>

#include "protocol/train_params.h"
#include "worker/model/llava.h"
#include "worker/model/lora.h"

namespace sweep::train {

struct ParamGroupInfo {
  std::string name;  // "lora", "projector", "projector_no_decay", "other", "other_no_decay"
  double peak_lr = 0;
  size_t tensors = 0;
};

struct OptimizerSetup {
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<ParamGroupInfo> groups;  // same order as optimizer->param_groups()
  std::vector<torch::Tensor> params;   // every trainable tensor, for clipping
};

// Empty groups are left out. Throws std::invalid_argument when nothing is trainable.
OptimizerSetup make_optimizer(model::LlavaForConditionalGeneration& m,
                              const model::TrainableGroups& groups, const TrainParams& p);

// Sets every group's lr to its peak rate times `factor`.
void set_lr_factor(OptimizerSetup& setup, double factor);

}  // namespace sweep::train
