#!/usr/bin/env bash
# Builds llava-sweep and runs the whole test suite (unit + end-to-end) with CTest.
# Usage: scripts/test.sh [extra ctest args]   (BUILD_DIR to change the build folder)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWEEP_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" "$@"
