#!/usr/bin/env bash
# Checks the habits the build cannot: who may include whom (docs/architecture.md), no LibTorch
# header outside worker/, and clang-format on every C++ file. Exits non-zero naming each breach.
# Usage: scripts/check-layout.sh [--fix]   (--fix formats the tree in place instead of checking)
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
report() {
  echo "check-layout: $*" >&2
  fail=1
}

# Project includes of the files under $1 that name one of the folders in $2 (a regex).
forbidden_includes() {
  local dir=$1 pattern=$2
  grep -rnE --include='*.h' --include='*.cpp' "^#include \"($pattern)/" "$dir" || true
}

check_not_including() {
  local dir=$1 pattern=$2 why=$3
  local hits
  hits=$(forbidden_includes "$dir" "$pattern")
  if [ -n "$hits" ]; then
    report "$dir must not include $pattern ($why):"
    echo "$hits" >&2
  fi
}

check_not_including common 'protocol|data|db|orchestrator|worker|tests|bench' "common/ is the bottom layer"
check_not_including protocol 'data|db|orchestrator|worker|tests|bench' "protocol/ is shared by both programs"
check_not_including data 'db|orchestrator|worker|tests|bench' "data/ is shared by both programs"
check_not_including db 'data|orchestrator|worker|tests|bench' "db/ is the orchestrator's store"
check_not_including orchestrator 'worker|tests|bench' "sweep never links the worker"
check_not_including worker 'orchestrator|db|tests|bench' "workers never open the database"
check_not_including fuzz 'tests|bench' "the fuzz targets stand alone"

# LibTorch stays in worker/ (and the tests and benchmarks of worker/).
torch_hits=$(grep -rnE --include='*.h' --include='*.cpp' '^#include <(torch|ATen|c10)/' \
  common protocol data db orchestrator fuzz || true)
if [ -n "$torch_hits" ]; then
  report "LibTorch headers outside worker/:"
  echo "$torch_hits" >&2
fi

# Formatting (.clang-format at the root).
mapfile -t sources < <(git ls-files '*.h' '*.cpp')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${sources[@]}"
  echo "check-layout: formatted ${#sources[@]} files"
elif ! command -v clang-format >/dev/null; then
  report "clang-format is not installed (scripts/install-deps.sh installs it)"
else
  unformatted=()
  for f in "${sources[@]}"; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then unformatted+=("$f"); fi
  done
  if [ ${#unformatted[@]} -gt 0 ]; then
    report "${#unformatted[@]} files differ from .clang-format (scripts/check-layout.sh --fix formats them):"
    printf '  %s\n' "${unformatted[@]}" >&2
  fi
fi

if [ $fail -eq 0 ]; then echo "check-layout: OK (${#sources[@]} files)"; fi
exit $fail
