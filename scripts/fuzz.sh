#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, ASan + UBSan) in build-fuzz and runs each for
# SECONDS (default 60) from its seed corpus in fuzz/corpus/<target>, copied to a scratch folder
# so the committed corpus does not grow. Prints per target the runs, exec/s, coverage and result;
# exits non-zero when any target crashed, leaked, ran out of memory or timed out, naming the
# reproducer (`build-fuzz/fuzz/<target> <reproducer>` replays it). docs/reliability.md.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (targets: the names below without fuzz_)
# FUZZ_BUILD=0 runs the targets already built in build-fuzz without rebuilding them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
all=(sweep_spec llava_json safetensors events_line job_file image query_guard)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
build=${BUILD_DIR:-build-fuzz}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
if [ "${FUZZ_BUILD:-1}" != 0 ]; then
  CXX=clang++ cmake -S . -B "$build" -DSWEEP_FUZZ=ON -DSWEEP_BUILD_WORKER=OFF \
    -DSWEEP_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  build_targets=()
  for t in "${targets[@]}"; do build_targets+=("fuzz_$t"); done
  cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${build_targets[@]}" >/dev/null
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sweep-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
logs="$build/fuzz-logs"
artifacts="$build/fuzz-artifacts"
mkdir -p "$logs"

failed=0
printf '%-12s %7s %10s %8s %6s %6s %7s  %s\n' target seconds runs exec/s cov ft corpus result
for t in "${targets[@]}"; do
  exe="$build/fuzz/fuzz_$t"
  corpus="$scratch/$t"
  mkdir -p "$corpus" "$artifacts/$t"
  cp fuzz/corpus/"$t"/* "$corpus"/
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=fuzz/dict/$t.dict")
  log="$logs/$t.log"
  rc=0
  started=$SECONDS
  "$exe" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  ran=$((SECONDS - started))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$({ grep -oE 'cov: [0-9]+' "$log" || true; } | tail -1 | cut -d' ' -f2)
  ft=$({ grep -oE 'ft: [0-9]+' "$log" || true; } | tail -1 | cut -d' ' -f2)
  units=$(find "$corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    failed=1
    repro=$({ grep -oE "Test unit written to [^ ]+" "$log" || true; } | tail -1 | awk '{print $NF}')
    kind=$({ grep -oE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer): [a-z-]+' "$log" || true; } |
      head -1 | sed 's/^ERROR: //')
    [ -n "$kind" ] || kind=$(grep -m1 -oE 'runtime error: .*' "$log" || tail -1 "$log")
    result="FAILED ($kind): reproducer ${repro:-none}, log $log"
  fi
  printf '%-12s %7s %10s %8s %6s %6s %7s  %s\n' "$t" "$ran" "${runs:-?}" "${speed:-?}" \
    "${cov:-?}" "${ft:-?}" "$units" "$result"
done
exit $failed
