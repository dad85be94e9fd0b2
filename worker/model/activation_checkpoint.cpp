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

// The CPU generator, then x's device's generator when x is elsewhere, then `extra`.
// defaultGenerator is device-generic, so this builds against CPU-only and CUDA LibTorch alike.
std::vector<at::Generator> generators_of(const torch::Device& device,
                                         const std::vector<at::Generator>& extra) {
  std::vector<at::Generator> out = {at::globalContext().defaultGenerator(torch::kCPU)};
  if (!device.is_cpu()) out.push_back(at::globalContext().defaultGenerator(device));
  for (const at::Generator& g : extra)
    if (g.defined()) out.push_back(g);
  return out;
}

std::vector<torch::Tensor> get_rng_states(const std::vector<at::Generator>& generators) {
  std::vector<torch::Tensor> states;
  for (at::Generator generator : generators) {  // a handle: copies share the state
    std::lock_guard<std::mutex> lock(generator.mutex());
    states.push_back(generator.get_state());
  }
  return states;
}

void set_rng_states(const std::vector<at::Generator>& generators,
                    const std::vector<torch::Tensor>& states) {
  for (size_t i = 0; i < generators.size(); ++i) {
    at::Generator generator = generators[i];
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(states[i]);
  }
}

// Puts the generators back to `states` when it goes out of scope, also when fn throws.
class RngRestore {
 public:
  RngRestore(std::vector<at::Generator> generators, std::vector<torch::Tensor> states)
      : generators_(std::move(generators)), states_(std::move(states)) {}
  ~RngRestore() { set_rng_states(generators_, states_); }
  RngRestore(const RngRestore&) = delete;
  RngRestore& operator=(const RngRestore&) = delete;

 private:
  std::vector<at::Generator> generators_;
  std::vector<torch::Tensor> states_;
};

// What backward needs besides the saved input. An autograd context stores only IValues, so the
// function object travels in a capsule.
struct CheckpointState : torch::CustomClassHolder {
  CheckpointedFn fn;
  std::vector<torch::Tensor> extras;  // detached
  std::vector<at::Generator> generators;
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
    state->generators = generators_of(x.device(), state->generators);
    state->rng_states = get_rng_states(state->generators);
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
      RngRestore restore(state->generators, get_rng_states(state->generators));
      set_rng_states(state->generators, state->rng_states);
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
                                    const std::vector<torch::Tensor>& extras,
                                    const std::vector<at::Generator>& generators) {
  std::vector<torch::Tensor> detached;
  detached.reserve(extras.size());
  for (const torch::Tensor& e : extras) detached.push_back(e.defined() ? e.detach() : e);
  if (!c10::GradMode::is_enabled()) return fn(x, detached);
  auto state = c10::make_intrusive<CheckpointState>();
  state->fn = fn;
  state->extras = std::move(detached);
  state->generators = generators;  // completed with the default ones at the forward
  torch::Tensor anchor = torch::empty({0}, x.options().requires_grad(true));
  return CheckpointFunction::apply(x, anchor, std::move(state));
}

}  // namespace sweep::model
