#include <iostream>

#include "orchestrator/cli/commands.h"

namespace sweep {

void add_version_command(CLI::App& app, CliContext& /*ctx*/) {
  CLI::App* cmd = app.add_subcommand("version", "Print the version of sweep");
  cmd->callback([] { std::cout << "sweep 0.1.0\n"; });
}

}  // namespace sweep
