#!/usr/bin/env bash
# `sweep-worker bench` beside the PyTorch-Python peer (peer.py) on the same model directories,
# batch, token counts and threads, in one run: one table row per preset and precision with the
# ratio of tokens/s (ours / peer). Runs alternate ours/peer so machine noise hits both alike.
# usage: bench/worker/side_by_side.sh [--presets "tiny small"] [--batch 4] [--text-tokens 64]
#        [--steps 5] [--threads 1] [--rank 8] [--repeats 2]      (BUILD_DIR=build by default)
# Needs python3-torch (apt-get install python3-torch).
set -euo pipefail
cd "$(dirname "$0")/../.."
worker=${BUILD_DIR:-build}/bin/sweep-worker
python=/usr/bin/python3
presets="tiny small" batch=4 text_tokens=64 steps=5 threads=1 rank=8 repeats=2
while [ $# -gt 0 ]; do
  case $1 in
    --presets) presets=$2 ;;
    --batch) batch=$2 ;;
    --text-tokens) text_tokens=$2 ;;
    --steps) steps=$2 ;;
    --threads) threads=$2 ;;
    --rank) rank=$2 ;;
    --repeats) repeats=$2 ;;
    *) echo "side_by_side.sh: unknown option $1" >&2; exit 1 ;;
  esac
  shift 2
done
[ -x "$worker" ] || { echo "side_by_side.sh: $worker not built (scripts/test.sh builds it)" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "side_by_side.sh: needs python3-torch" >&2; exit 1; }

models=$(mktemp -d)
trap 'rm -rf "$models"' EXIT
args=(--batch "$batch" --text-tokens "$text_tokens" --steps "$steps" --threads "$threads" --rank "$rank")
results=$models/results.jsonl
for preset in $presets; do
  "$worker" init-model --preset "$preset" --out "$models/$preset" >/dev/null 2>&1
  for precision in fp32 bf16; do
    for _ in $(seq "$repeats"); do
      "$worker" bench --model "$models/$preset" --precision "$precision" "${args[@]}" |
        sed "s/^{/{\"preset\":\"$preset\",/" >>"$results"
      "$python" bench/worker/peer.py --model "$models/$preset" --precision "$precision" "${args[@]}" |
        sed "s/^{/{\"preset\": \"$preset\", /" >>"$results"
    done
  done
done

# Best of the repeats per (preset, precision, impl); ratio of tokens/s.
"$python" - "$results" <<'EOF'
import json, sys
best = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = (r["preset"], r["precision"], r["impl"])
    if key not in best or r["tokens_per_s"] > best[key]["tokens_per_s"]:
        best[key] = r
print(f"{'preset':6} {'prec':4} {'ours tok/s':>11} {'peer tok/s':>11} {'ratio':>6} "
      f"{'ours ms':>8} {'peer ms':>8} {'ours RSS':>9} {'peer RSS':>9}")
for (preset, precision, impl), ours in sorted(best.items()):
    if impl != "sweep-worker":
        continue
    peer = best[(preset, precision, "pytorch-python")]
    print(f"{preset:6} {precision:4} {ours['tokens_per_s']:11.0f} {peer['tokens_per_s']:11.0f} "
          f"{ours['tokens_per_s'] / peer['tokens_per_s']:6.2f} {ours['step_ms']:8.1f} "
          f"{peer['step_ms']:8.1f} {ours['peak_rss_mb']:8.0f}M {peer['peak_rss_mb']:8.0f}M")
EOF
