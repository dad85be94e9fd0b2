// The exit codes of `sweep-worker` (docs/worker-protocol.md). The orchestrator reads them when a
// worker ends without a final event; the worker's commands return them.
#pragma once

namespace sweep {

constexpr int kExitOk = 0;
constexpr int kExitBadInput = 1;     // job file, model or data at fault: retrying cannot help
constexpr int kExitInternal = 2;     // a bug or an environment failure
constexpr int kExitDiverged = 3;     // NaN/inf loss
constexpr int kExitOutOfMemory = 4;  // the job does not fit the device's memory at its settings
constexpr int kExitDiskFull = 5;     // no space left on the run directory's file system

}  // namespace sweep
