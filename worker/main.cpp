// `sweep-worker`: runs one job of a sweep (`sweep-worker JOB.json`), and the model tools that
// need tensors (init-model, predict, score, merge, make-builtin). Spawned by `sweep`; runnable
// by hand.
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "common/failure.h"
#include "worker/commands/commands.h"

namespace sweep::worker {
namespace {

const std::vector<Command>& commands() {
  static const std::vector<Command> all = {
      {"run",
       "JOB.json [JOB2.json ...]  run a sweep job, or several packed over one shared base (same "
       "as `sweep-worker JOB.json ...`)",
       cmd_run_job},
      {"predict", "--model DIR [--adapter CKPT] [--image IMG] --prompt TEXT  greedy answer",
       cmd_predict},
      {"score",
       "--model DIR [--adapter CKPT] --data DATA.json --image-folder DIR  per-sample loss, exact "
       "match",
       cmd_score},
      {"merge",
       "CKPT [--base DIR] --out DIR [--dtype fp32|bf16|fp16] [--verify-samples K]  fold a LoRA "
       "checkpoint into its base model and verify the result",
       cmd_merge},
      {"verify-merge",
       "MERGED_DIR --adapter CKPT [--base DIR] [--dtype D]  check a merged model against the "
       "adapter on its base",
       cmd_verify_merge},
      {"make-builtin", "tiny-llava  make the built-in base model once; prints its directory",
       cmd_make_builtin},
      {"init-model",
       "(--preset tiny|small | --config FILE) --out DIR [--seed N] [--vocab-size N] "
       "[--device cpu|cuda] [--precision fp32|bf16]  random LLaVA, HF layout",
       cmd_init_model},
      {"bench",
       "(--model DIR | --config FILE) [--device cpu|cuda] [--batch B] [--text-tokens T] "
       "[--steps N] [--threads K] [--rank R] [--precision fp32|bf16] "
       "[--gradient-checkpointing 0|1] [--pack P] [--profile FILE]  time LoRA training steps",
       cmd_bench},
  };
  return all;
}

// A training step allocates and frees the same tensors every step. With glibc's defaults, blocks
// above the (dynamic) mmap threshold are mapped and unmapped each time and the freed top of the
// heap is given back to the kernel, so every step page-faults its activations in again: on the
// tiny model that was a third of a CPU step (kernel page faults, and the memset that first
// touches a fresh GEMM output), and the step ran ~1.8x faster without it (docs/performance.md).
// Keeping freed memory in the process costs nothing in peak RSS, which the step reaches anyway.
// SWEEP_MALLOC_DEFAULTS=1 keeps glibc's defaults (to measure the difference).
void keep_freed_memory() {
  if (const char* keep = std::getenv("SWEEP_MALLOC_DEFAULTS"); keep && *keep == '1') return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc accepts on 64-bit
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

void print_help(std::ostream& out) {
  out << "usage: sweep-worker JOB.json [JOB2.json ...]  run sweep jobs (docs/worker-protocol.md)\n"
      << "       sweep-worker COMMAND [ARGS...]\n\ncommands:\n";
  for (const Command& c : commands()) out << "  " << c.name << "  " << c.usage << "\n";
}

}  // namespace
}  // namespace sweep::worker

int main(int argc, char** argv) {
  using namespace sweep::worker;
  using sweep::kExitBadInput, sweep::kExitInternal, sweep::kExitOk;
  keep_freed_memory();
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_help(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? kExitBadInput : kExitOk;
  }
  std::string first = argv[1];
  Args rest(argv + 2, argv + argc);
  try {
    if (first.size() > 5 && first.compare(first.size() - 5, 5, ".json") == 0)
      return cmd_run_job(Args(argv + 1, argv + argc));
    for (const Command& c : commands())
      if (first == c.name) return c.run(rest);
    std::cerr << "sweep-worker: unknown command '" << first << "'\n";
    print_help(std::cerr);
    return kExitBadInput;
  } catch (...) {
    const sweep::Error error = sweep::current_error();
    const bool bad_input =
        error.kind == sweep::ErrorKind::kUser || error.kind == sweep::ErrorKind::kNotFound;
    std::cerr << "sweep-worker: " << (bad_input ? "" : "internal error: ") << error.to_string()
              << "\n";
    return bad_input ? kExitBadInput : kExitInternal;
  }
}
