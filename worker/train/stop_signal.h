// Graceful stop: SIGTERM (what `sweep cancel`, Slurm and the scheduler send) and SIGINT set a flag
// that the training loop reads between steps; the job then checkpoints, emits `stopped` and exits
// 0. LibTorch-free.
#pragma once

namespace sweep::train {

// Installs the handlers (idempotent). A second SIGINT while stopping kills the process as usual.
void install_stop_handlers();
// True once a stop signal arrived (or request_stop() was called).
bool stop_requested();
// For tests and for callers that stop on their own condition.
void request_stop();
void clear_stop_request();

}  // namespace sweep::train
