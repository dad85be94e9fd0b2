#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install what is missing, build, run the demo sweep
# (sweeps/r_alpha.yaml on the built-in shapes data and tiny LLaVA), then print the leaderboard and the
# best checkpoint. Re-running resumes: finished jobs are kept.
# Usage: scripts/demo.sh [SPEC.yaml]   (as root, or with sudo available for the install step)
set -euo pipefail
cd "$(dirname "$0")/.."
spec=${1:-sweeps/r_alpha.yaml}
build=${BUILD_DIR:-build}

bash scripts/install-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target sweep sweep-worker

sweep="$build/bin/sweep"
"$sweep" run "$spec"
name=$(awk '/^name:/ {print $2; exit}' "$spec")
echo
"$sweep" leaderboard "$name"
echo
echo "best checkpoint: $("$sweep" best "$name")"
