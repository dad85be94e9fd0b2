#!/usr/bin/env bash
# The GPU check (docs/gpu.md), in one go on a machine with an NVIDIA GPU, a CUDA LibTorch inside
# python3's torch package, transformers + peft, CMake and a C++ compiler, but no package registry:
#   1. unpacks the Debian 12 build dependencies carried in .device/debs (scripts/device/
#      fetch-debs.sh downloads them) into a prefix;
#   2. builds sweep and sweep-worker against the machine's CUDA LibTorch;
#   3. runs `ctest -L gpu` (training on the GPU, two jobs sharing it) and the model's unit tests
#      on this LibTorch;
#   4. the GPU benchmark: a LoRA step of a LLaVA-1.5-7B-shaped random model (bench/gpu/
#      llava-1.5-7b-config.json) in sweep-worker and in transformers + PEFT (bench/gpu/peer_hf.py);
#   5. the third-party check: transformers and PEFT load a base, an adapter and a merged model we
#      wrote and give our losses (scripts/device/third_party_check.py).
# Every stage runs even when an earlier one failed (what did not build is reported as such).
# Results: $OUT/summary.json, $OUT/summary.txt, $OUT/machine.txt and $OUT/stages.log (the end of
# each stage's log, one after the other). Usage:
#   scripts/device-check.sh [stage ...]   (stages: build gpu_tests unit_tests bench third_party)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${OUT:-$root/device-out}
mkdir -p "$out"
prefix=${SWEEP_DEVICE_PREFIX:-/tmp/sweep-prefix}
build=${BUILD_DIR:-build-gpu}
work=${SWEEP_DEVICE_WORK:-/tmp/sweep-device-work}
internal=""
if [ "${1:-}" = "--do" ]; then internal=$2; fi  # run_stage runs the functions below this way
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build unit_tests gpu_tests bench third_party)
jobs=$(nproc)
summary="$out/summary.txt"
[ -z "$internal" ] && : >"$summary"
declare -A status seconds

note() { echo "$*" | tee -a "$summary"; }

# run_stage NAME LIMIT_SECONDS COMMAND...: runs COMMAND with its output in $out/NAME.log.
run_stage() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1 </dev/null
  local rc=$?
  seconds[$name]=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then status[$name]=ok; else status[$name]="failed (exit $rc)"; fi
  [ $rc -eq 124 ] && status[$name]="timed out after ${limit}s"
  note "$(printf '%-12s %-24s %4ss  %s' "$name" "${status[$name]}" "${seconds[$name]}" "$out/$name.log")"
  return $rc
}

want() { [[ " ${stages[*]} " == *" $1 "* ]]; }

# --- the machine -----------------------------------------------------------------------------
[ -z "$internal" ] && {
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  echo "compiler: $(c++ --version 2>&1 | head -1)"
  echo "cmake: $(cmake --version 2>&1 | head -1)"
  python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "peft", peft.__version__)' 2>&1
  grep PRETTY_NAME /etc/os-release
} | tee "$out/machine.txt"

# --- 1. dependencies -------------------------------------------------------------------------
if [ ! -e "$prefix/.unpacked" ]; then
  mkdir -p "$prefix"
  for deb in .device/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
  touch "$prefix/.unpacked"
fi
lib="$prefix/usr/lib/x86_64-linux-gnu"
# The build's own lib dir first: there sweep-worker keeps its DF_SYMBOLIC copy of
# libsentencepiece (worker/train/CMakeLists.txt), which the unpacked one must not shadow.
export LD_LIBRARY_PATH="$root/$build/worker/lib:$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_SYSROOT_DIR="$prefix"
export PKG_CONFIG_LIBDIR="$lib/pkgconfig:$prefix/usr/share/pkgconfig"
pkg_config=$(command -v pkg-config || echo "$prefix/usr/bin/pkgconf")
torch_prefix=$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
generator=()
keep_going=(-k)  # make: keep going past errors to list them all
if command -v ninja >/dev/null; then generator=(-G Ninja) keep_going=(-k 0); fi

# --- 2. build ----------------------------------------------------------------------------------
build_all() {
  cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr" -DPKG_CONFIG_EXECUTABLE="$pkg_config" || return 1
  # The programs and the tests this script runs.
  cmake --build "$build" -j "$jobs" --target sweep sweep-worker sweep-train-tokenizer \
    gpu_train_test e2e_sweep_test train_job_test model_llava_test model_lora_test \
    model_golden_test model_splice_test model_supervised_loss_test \
    $(grep -q activation_checkpoint_test tests/model/CMakeLists.txt &&
      echo model_activation_checkpoint_test) -- "${keep_going[@]}"
}
# The peer needs no build: it runs on the GPU while the CPUs compile.
bench_args=(--batch 16 --text-tokens 100 --steps 5 --rank 128)
if want bench && [ -z "$internal" ]; then
  (run_stage bench_peer 200 python3 bench/gpu/peer_hf.py \
    --config bench/gpu/llava-1.5-7b-config.json --gradient-checkpointing 1 "${bench_args[@]}") &
  peer_pid=$!
fi
if want build && [ -z "$internal" ]; then
  run_stage build "${SWEEP_BUILD_LIMIT:-330}" bash "$0" --do build_all
fi
worker="$build/bin/sweep-worker"
sweep="$build/bin/sweep"

# --- 3. tests ----------------------------------------------------------------------------------
# The model's tests and the CPU trainer's on this LibTorch (fused attention on the CPU).
model_tests() {
  local rc=0 t
  for t in "$build"/tests/model/model_*_test "$build"/tests/train/train_job_test; do
    echo "== $t"
    "$t" --gtest_brief=1 || rc=1
  done
  return $rc
}
if [ -n "$internal" ]; then
  "$internal"
  exit
fi
if want unit_tests; then run_stage unit_tests 150 bash "$0" --do model_tests; fi
if want gpu_tests; then
  run_stage gpu_tests 240 ctest --test-dir "$build" -L gpu --output-on-failure -j 2
fi

# --- 4. GPU benchmark --------------------------------------------------------------------------
if want bench; then
  wait "$peer_pid"
  # A 7B-shaped model dir (bf16, drawn on the GPU), then loaded by the benchmark: its load time
  # and peak host memory against the checkpoint's size.
  big=${SWEEP_DEVICE_BIG:-/tmp/sweep-llava-7b}
  run_stage init_7b 150 "$worker" init-model --config bench/gpu/llava-1.5-7b-config.json \
    --device cuda --precision bf16 --out "$big"
  du -sm "$big" >"$out/checkpoint_size.txt" 2>&1
  run_stage bench_ours 180 "$worker" bench --model "$big" \
    --device cuda --precision bf16 --gradient-checkpointing 1 --threads 8 "${bench_args[@]}"
  # What gradient checkpointing costs and saves: the same step keeping every activation.
  run_stage bench_ours_no_ckpt 120 "$worker" bench --model "$big" \
    --device cuda --precision bf16 --gradient-checkpointing 0 --threads 8 "${bench_args[@]}"
  rm -rf "$big"
fi

# --- 5. third-party check ----------------------------------------------------------------------
if want third_party; then
  run_stage third_party 240 bash scripts/device/third_party_flow.sh "$build" "$work"
fi

# --- summary -----------------------------------------------------------------------------------
python3 - "$out" <<'PY' | tee -a "$summary"
import json, os, sys
out = sys.argv[1]
def last_json(name):
    try:
        lines = [l for l in open(os.path.join(out, name + ".log")) if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except OSError:
        return None
ours, peer = last_json("bench_ours"), last_json("bench_peer")
no_ckpt = last_json("bench_ours_no_ckpt")
third = last_json("third_party")
summary = {"bench": {"sweep-worker": ours, "transformers+peft": peer}, "third_party": third}
try:
    size_mb = float(open(os.path.join(out, "checkpoint_size.txt")).read().split()[0])
    summary["bench"]["checkpoint_mb"] = size_mb
    if ours:
        print("load: %.1f GB checkpoint in %.1f s, peak host RSS %.1f GB (%.2fx its size)" % (
            size_mb / 1024, ours["load_seconds"], ours["load_peak_rss_mb"] / 1024,
            ours["load_peak_rss_mb"] / size_mb))
except (OSError, ValueError, IndexError):
    pass
if ours and peer:
    summary["bench"]["tokens_per_s_ratio"] = ours["tokens_per_s"] / peer["tokens_per_s"]
    print("bench: sweep-worker %.0f tokens/s, peak %.1f GB; transformers+peft %.0f tokens/s, "
          "peak %.1f GB; ratio %.2f" % (ours["tokens_per_s"], ours["peak_device_mb"] / 1024,
          peer["tokens_per_s"], peer["peak_mem_gb"], summary["bench"]["tokens_per_s_ratio"]))
if no_ckpt:
    summary["bench"]["sweep-worker without gradient checkpointing"] = no_ckpt
    print("without gradient checkpointing: %.0f tokens/s, peak %.1f GB" % (
        no_ckpt["tokens_per_s"], no_ckpt["peak_device_mb"] / 1024))
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
PY

# One file of logs: the end of each stage's, by stage name.
for log in "$out"/*.log; do
  [ "$log" = "$out/stages.log" ] && continue
  { echo "===== $(basename "$log" .log) (last 200 lines)"; tail -n 200 "$log"; } >>"$out/stages.log"
  rm -f "$log"
done
