#!/usr/bin/env bash
# The LibTorch-free parsers that read untrusted files (safetensors headers, sweep files, job and
# event files, a model's config.json), the run loop (unit tests on a fake executor, and `sweep run`
# end to end with the fake worker, itself built with the sanitizers) and the results store's
# ingestion and queries under AddressSanitizer + UBSan. Run by CI after the main suite.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-asan}
tests=(
  tests/model/model_safetensors_test tests/spec/spec_test tests/protocol/protocol_test
  tests/protocol/lora_targets_test tests/protocol/memory_estimate_test
  tests/run/run_units_test tests/run/slot_memory_test tests/run/run_loop_unit_test
  tests/run/run_loop_test tests/db/db_store_test tests/db/db_cli_test
)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSWEEP_SANITIZE=ON -DSWEEP_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${tests[@]##*/}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in "${tests[@]}"; do
  "$build/$t" --gtest_brief=1
done
