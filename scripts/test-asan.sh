#!/usr/bin/env bash
# The LibTorch-free parsers that read untrusted files (safetensors headers, sweep files, job and
# event files, a model's config.json) under AddressSanitizer + UBSan. Run by CI after the main
# suite.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-asan}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSWEEP_SANITIZE=ON -DSWEEP_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
  --target model_safetensors_test spec_test protocol_test lora_targets_test memory_estimate_test
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in tests/model/model_safetensors_test tests/spec/spec_test tests/protocol/protocol_test \
  tests/protocol/lora_targets_test tests/protocol/memory_estimate_test; do
  "$build/$t" --gtest_brief=1
done
