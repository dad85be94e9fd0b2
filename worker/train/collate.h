// Turns a loader micro-batch into the model's MultimodalInputs: token lists as they are (the
// model splices, truncates and pads), pixels stacked into one [B, 3, S, S] float tensor with zeros
// for text-only samples.
#pragma once

#include <vector>

#include <torch/types.h>

#include "data/loader.h"
#include "worker/model/splice.h"

namespace sweep::train {

// Throws std::runtime_error naming the sample when its pixel count is not 3 * S * S.
model::MultimodalInputs collate(const std::vector<data::LoadedSample>& batch, int64_t image_size,
                                torch::Device device);

// One sample's CHW floats as a [3, S, S] tensor on `device` (undefined when `pixels` is empty).
torch::Tensor pixels_to_tensor(const std::vector<float>& pixels, int64_t image_size,
                               torch::Device device);

}  // namespace sweep::train
