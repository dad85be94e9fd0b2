#!/usr/bin/env bash
# Builds llava-sweep and runs the whole test suite (unit, end-to-end, and the bounded kill soak:
# label `soak`, about a minute; SWEEP_SOAK_JOBS / SWEEP_SOAK_ROUNDS make it longer) with CTest.
# `-L soak` runs only the soak, `-LE soak` all but it. The `slurm`
# tests run through a cluster started by scripts/slurm-cluster.sh; without one they skip (and
# fail under SWEEP_REQUIRE_SLURM=1).
# Usage: scripts/test.sh [extra ctest args]   (BUILD_DIR to change the build folder)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWEEP_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j "$jobs"
if [ -z "${SLURM_CONF:-}" ] && [ -f "${SWEEP_SLURM_DIR:-/tmp/llava-sweep-slurm}/slurm.conf" ]; then
  export SLURM_CONF="${SWEEP_SLURM_DIR:-/tmp/llava-sweep-slurm}/slurm.conf"
fi
ctest --test-dir "$build" --output-on-failure -j "$jobs" "$@"
