// The `sweep-worker` subcommands. Each takes the arguments after its name and returns the
// process exit code (docs/worker-protocol.md): 0 success, 1 bad input (job file, model, data),
// 2 internal error, 3 diverged (NaN/inf loss).
#pragma once

#include <string>
#include <vector>

#include "protocol/exit_codes.h"
#include "worker/train/merge_verify.h"
#include "worker/train/tool_args.h"

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
int cmd_verify_merge(const Args& args);  // cmd_verify_merge.cpp
int cmd_make_builtin(const Args& args);  // cmd_make_builtin.cpp
int cmd_init_model(const Args& args);    // cmd_init_model.cpp
int cmd_bench(const Args& args);         // cmd_bench.cpp

// What merge and verify-merge check a merged model on (cmd_verify_merge.cpp): --verify-samples,
// --data and --image-folder, else the val data, seed and lengths of the checkpoint's manifest.
train::MergeCheckInputs merge_check_inputs(const train::ToolArgs& a, const std::string& ckpt,
                                           const std::string& base, const std::string& dtype);

}  // namespace sweep::worker
