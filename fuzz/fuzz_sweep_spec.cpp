// Sweep files (orchestrator/spec/sweep_spec.h): parse_sweep_spec on the input; an accepted spec
// of at most a few thousand points is expanded to jobs and written back as JSON.
#include <cstdint>
#include <exception>
#include <string>

#include "orchestrator/spec/sweep_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto spec = sweep::parse_sweep_spec(text, "/fuzz/sweep.yaml");
  if (!spec.ok()) return 0;
  try {
    (void)sweep::spec_to_json(*spec);
    uint64_t points = 1;
    if (spec->search.sampled()) {
      points = static_cast<uint64_t>(spec->search.n_trials);
    } else {
      for (size_t n : sweep::grid_shape(*spec)) {
        points *= n;
        if (points > 4096) break;
      }
    }
    if (points + spec->include.size() <= 4096) (void)sweep::expand_grid(*spec);
  } catch (const std::exception&) {
  }
  return 0;
}
