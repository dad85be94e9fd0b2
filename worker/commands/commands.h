// The `sweep-worker` subcommands. Each takes the arguments after its name and returns the
// process exit code (docs/worker-protocol.md): 0 success, 1 bad input (job file, model, data),
// 2 internal error, 3 diverged (NaN/inf loss).
#pragma once

#include <string>
#include <vector>

#include "protocol/exit_codes.h"

namespace sweep::worker {

using Args = std::vector<std::string>;

struct Command {
  const char* name;
  const char* usage;  // one line for --help
  int (*run)(const Args& args);
};

int cmd_run_job(const Args& args);       // cmd_run_job.cpp
int cmd_predict(const Args& args);       // cmd_predict.cpp
int cmd_score(const Args& args);         // cmd_score.cpp
int cmd_merge(const Args& args);         // cmd_merge.cpp
int cmd_make_builtin(const Args& args);  // cmd_make_builtin.cpp
int cmd_init_model(const Args& args);    // cmd_init_model.cpp
int cmd_bench(const Args& args);         // cmd_bench.cpp

}  // namespace sweep::worker
