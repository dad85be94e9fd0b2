// The exit codes of `sweep` (docs/running.md#exit-codes). 1 and 2 come from the error that stops
// a command (Error::exit_code in common/result.h); the others are set by `sweep run`.
#pragma once

namespace sweep {

constexpr int kSweepExitOk = 0;             // done; for `sweep run`: every job succeeded or pruned
constexpr int kSweepExitUserError = 1;      // bad input: spec, flag, data, model, a held lock
constexpr int kSweepExitInternalError = 2;  // a bug, an I/O or database error
constexpr int kSweepExitJobsFailed = 3;     // `sweep run` ran to the end, but some job ended
                                            // failed, diverged or infeasible
constexpr int kSweepExitInterrupted = 130;  // `sweep run` stopped by Ctrl-C or SIGTERM

}  // namespace sweep
