// `sweep-worker make-builtin tiny-llava`: makes the built-in base model in the cache if it is not
// there yet (once across processes) and prints its directory as the last line of stdout.
#include <iostream>

#include "worker/commands/commands.h"
#include "worker/train/builtin_model.h"
#include "worker/train/tool_args.h"

namespace sweep::worker {

int cmd_make_builtin(const Args& args) {
  return train::run_tool("make-builtin", [&]() -> int {
    if (args.size() != 1) {
      std::cerr << "usage: sweep-worker make-builtin tiny-llava\n";
      return kExitBadInput;
    }
    const std::string ref = args[0].rfind("builtin:", 0) == 0 ? args[0] : "builtin:" + args[0];
    std::cout << train::make_builtin_model(ref, &std::cerr) << "\n";
    return kExitOk;
  });
}

}  // namespace sweep::worker
