// What every `sweep` subcommand shares: global flags, path defaults and the exit code.
#pragma once

#include <string>

#include "common/result.h"

namespace sweep {

struct CliContext {
  std::string db_flag;    // --db; empty: $SWEEP_DB, then runs/sweep.db
  std::string runs_flag;  // --runs; empty: $SWEEP_RUNS, then runs
  int exit_code = 0;

  std::string db_path() const;
  std::string runs_dir() const;

  // Prints "error: <message>" and the hint to stderr; sets the exit code from the error kind.
  void fail(const Error& error);
};

// Directory of the running `sweep` executable (to find `sweep-worker` beside it).
std::string self_exe_dir();

}  // namespace sweep
