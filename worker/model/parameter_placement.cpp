#include "worker/model/parameter_placement.h"

#include <torch/types.h>

namespace sweep::model {
namespace {

thread_local const ParameterPlacement* innermost = nullptr;

}  // namespace

ParameterPlacement::ParameterPlacement(c10::ScalarType dtype, c10::Device device)
    : dtype_(dtype), device_(device), outer_(innermost) {
  innermost = this;
}

ParameterPlacement::~ParameterPlacement() { innermost = outer_; }

const ParameterPlacement* ParameterPlacement::current() { return innermost; }

at::Tensor new_parameter(c10::IntArrayRef shape) {
  const ParameterPlacement* p = innermost;
  if (!p) return torch::empty(shape, torch::kFloat32);
  return torch::empty(shape, torch::TensorOptions().dtype(p->dtype()).device(p->device()));
}

bool drawing_parameters() { return innermost == nullptr; }

}  // namespace sweep::model
