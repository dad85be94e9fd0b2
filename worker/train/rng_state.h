// The random state a resumed job needs to draw the same numbers as an uninterrupted one: LibTorch's
// default CPU generator (LoRA dropout). Saved as rng.json: {"torch_cpu": "<hex bytes>"}. The data
// order is not here: it is a pure function of (seed, epoch) kept in the loader's state.
#pragma once

#include <nlohmann/json.hpp>

namespace sweep::train {

nlohmann::json capture_rng_state();
// Throws std::runtime_error when `state` is not what capture_rng_state wrote.
void restore_rng_state(const nlohmann::json& state);

}  // namespace sweep::train
