#include "worker/model/activation_checkpoint.h"

#include <mutex>
#include <utility>

#include <ATen/Context.h>
#include <ATen/core/ivalue.h>
#include <torch/autograd.h>

namespace sweep::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The CPU generator, then x's device's generator when x is elsewhere. defaultGenerator is
// device-generic, so this builds against CPU-only and CUDA LibTorch alike.
std::vector<torch::Device> generator_devices(const torch::Device& device) {
  std::vector<torch::Device> devices = {torch::Device(torch::kCPU)};
  if (!device.is_cpu()) devices.push_back(device);
  return devices;
}

std::vector<torch::Tensor> get_rng_states(const std::vector<torch::Device>& devices) {
  std::vector<torch::Tensor> states;
  for (const torch::Device& device : devices) {
    at::Generator generator = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(generator.mutex());
    states.push_back(generator.get_state());
  }
  return states;
}

void set_rng_states(const std::vector<torch::Device>& devices,
                    const std::vector<torch::Tensor>& states) {
  for (size_t i = 0; i < devices.size(); ++i) {
    at::Generator generator = at::globalContext().defaultGenerator(devices[i]);
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(states[i]);
  }
}

// Puts the generators back to `states` when it goes out of scope, also when fn throws.
class RngRestore {
 public:
  RngRestore(std::vector<torch::Device> devices, std::vector<torch::Tensor> states)
      : devices_(std::move(devices)), states_(std::move(states)) {}
  ~RngRestore() { set_rng_states(devices_, states_); }
  RngRestore(const RngRestore&) = delete;
  RngRestore& operator=(const RngRestore&) = delete;

 private:
  std::vector<torch::Device> devices_;
  std::vector<torch::Tensor> states_;
};

// What backward needs besides the saved input. An autograd context stores only IValues, so the
// function object travels in a capsule.
struct CheckpointState : torch::CustomClassHolder {
  CheckpointedFn fn;
  std::vector<torch::Tensor> extras;  // detached
  std::vector<torch::Device> devices;
  std::vector<torch::Tensor> rng_states;  // at the forward
  bool input_requires_grad = false;
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // `anchor` is an empty tensor that requires grad: it gives the output a grad_fn even when x
  // needs no gradient (the first layer's input when the embeddings are frozen), because the
  // block's own parameters still need theirs.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& anchor,
                               c10::intrusive_ptr<CheckpointState> state) {
    (void)anchor;
    ctx->save_for_backward({x});
    state->devices = generator_devices(x.device());
    state->rng_states = get_rng_states(state->devices);
    state->input_requires_grad = x.requires_grad();
    ctx->saved_data["state"] = c10::IValue::make_capsule(state);
    c10::NoGradGuard no_grad;
    return state->fn(x, state->extras);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto state =
        c10::static_intrusive_pointer_cast<CheckpointState>(ctx->saved_data["state"].toCapsule());
    const torch::Tensor x = ctx->get_saved_variables()[0];
    torch::Tensor input = x.detach().requires_grad_(state->input_requires_grad);
    torch::Tensor output;
    {
      RngRestore restore(state->devices, get_rng_states(state->devices));
      set_rng_states(state->devices, state->rng_states);
      c10::AutoGradMode grad_on(true);
      output = state->fn(input, state->extras);
      // Accumulates into the .grad of the block's parameters and of `input`.
      if (output.requires_grad() && grad_outputs[0].defined())
        torch::autograd::backward({output}, {grad_outputs[0]});
    }
    torch::Tensor grad_x = state->input_requires_grad ? input.grad() : torch::Tensor();
    return {grad_x, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor activation_checkpoint(const CheckpointedFn& fn, const torch::Tensor& x,
                                    const std::vector<torch::Tensor>& extras) {
  std::vector<torch::Tensor> detached;
  detached.reserve(extras.size());
  for (const torch::Tensor& e : extras) detached.push_back(e.defined() ? e.detach() : e);
  if (!c10::GradMode::is_enabled()) return fn(x, detached);
  auto state = c10::make_intrusive<CheckpointState>();
  state->fn = fn;
  state->extras = std::move(detached);
  torch::Tensor anchor = torch::empty({0}, x.options().requires_grad(true));
  return CheckpointFunction::apply(x, anchor, std::move(state));
}

}  // namespace sweep::model
