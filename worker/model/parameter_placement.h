// Where the model's own modules create their parameters, and whether they draw them.
//
// By default a new parameter is fp32 on the CPU and drawn at once (the init-model weights). A
// loader that overwrites every weight does not want that: a 7B model would first exist as 28 GB of
// fp32 random numbers on the host. Inside a ParameterPlacement scope new parameters are left
// uninitialised in the scope's dtype on its device, so the checkpoint's tensors are copied straight
// into their final place. Scopes are per thread and nest.
#pragma once

#include <ATen/core/TensorBody.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/util/ArrayRef.h>

namespace sweep::model {

class ParameterPlacement {
 public:
  ParameterPlacement(c10::ScalarType dtype, c10::Device device);
  ~ParameterPlacement();
  ParameterPlacement(const ParameterPlacement&) = delete;
  ParameterPlacement& operator=(const ParameterPlacement&) = delete;

  // The innermost scope of this thread, or nullptr outside any.
  static const ParameterPlacement* current();

  c10::ScalarType dtype() const { return dtype_; }
  c10::Device device() const { return device_; }

 private:
  c10::ScalarType dtype_;
  c10::Device device_;
  const ParameterPlacement* outer_;
};

// A tensor for a new parameter: uninitialised in the current placement, or fp32 on the CPU
// outside any (the caller then draws it; see drawing_parameters()).
at::Tensor new_parameter(c10::IntArrayRef shape);
// True outside a placement scope: constructors initialise what they create.
bool drawing_parameters();

}  // namespace sweep::model
