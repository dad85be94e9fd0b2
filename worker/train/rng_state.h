// The random state a resumed job needs to draw the same numbers as an uninterrupted one: LibTorch's
// default CPU generator and the LoRA adapters' own dropout generator (model::
// lora_dropout_generator). Saved as rng.json: {"torch_cpu": "<hex bytes>", "lora_dropout": "<hex
// bytes>"}. The data order is not here: it is a pure function of (seed, epoch) kept in the
// loader's state.
#pragma once

#include <ATen/core/Generator.h>
#include <nlohmann/json.hpp>

namespace sweep::train {

// `lora_dropout` undefined: no "lora_dropout" entry.
nlohmann::json capture_rng_state(at::Generator lora_dropout = {});
// Throws std::runtime_error when `state` is not what capture_rng_state wrote. A checkpoint written
// before the adapters had their own generator has no "lora_dropout": `lora_dropout` then keeps
// its state.
void restore_rng_state(const nlohmann::json& state, at::Generator lora_dropout = {});

}  // namespace sweep::train
