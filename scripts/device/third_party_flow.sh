#!/usr/bin/env bash
# Stage 5 of scripts/device-check.sh: makes what the ecosystem must read (a base model dir from
# init-model with a tokenizer, a LoRA checkpoint trained on the GPU by `sweep run`, the model
# `sweep merge` writes), scores each with `sweep-worker score` and hands everything to
# third_party_check.py (transformers + PEFT). Usage: third_party_flow.sh BUILD_DIR WORK_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
work=$2
worker=$build/bin/sweep-worker
rm -rf "$work"
mkdir -p "$work/model"
cd "$work"
export SWEEP_CACHE=$work/cache SWEEP_DB=$work/sweep.db SWEEP_RUNS=$work/runs

# A tokenizer trained on the shapes world's words, and a random tiny LLaVA sized to it.
cat >corpus.txt <<'TXT'
A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.
USER: ASSISTANT:
What colour is the circle? red green blue yellow purple orange
What shape is the red object? circle square triangle
How many shapes are there? one two three
Where is the blue square? left right
centre top bottom. Is there a green triangle? yes no
Describe the image.
TXT
"$worker" init-model --preset tiny --vocab-size 400 --out model
"$build/bin/sweep-train-tokenizer" corpus.txt model/tokenizer.model 400

cat >tiny.yaml <<'YAML'
name: tiny
base_model: model
data:
  train: builtin:shapes/vqa_train.json
  val: builtin:shapes/vqa_val.json
  image_folder: builtin:shapes/images
train: {max_steps: 30, eval_every: 10, eval_samples: 8, batch_size: 4, max_new_tokens: 4,
        warmup_steps: 0}
grid:
  lora_r: [8]
  lora_alpha: [16]
  learning_rate: [5.0e-3]
objective: {metric: val_loss, mode: min}
YAML
echo "resources: ${SWEEP_FLOW_RESOURCES:-{gpus: [0]\}}" >>tiny.yaml
"$build/bin/sweep" run tiny.yaml
ckpt=$("$build/bin/sweep" best tiny | tail -1)
"$build/bin/sweep" merge "$ckpt" --out merged

data=$(find cache -name vqa_val.json | head -1)
images=$(dirname "$data")/images
score=(--data "$data" --image-folder "$images" --precision fp32 --device cpu --max-new-tokens 4)
"$worker" score --model model "${score[@]}" >base.jsonl
"$worker" score --model model --adapter "$ckpt" "${score[@]}" >adapter.jsonl
"$worker" score --model merged "${score[@]}" >merged.jsonl

python3 "$here/third_party_check.py" --model model --adapter "$ckpt" --merged merged \
  --data "$data" --image-folder "$images" --ours-base base.jsonl --ours-adapter adapter.jsonl \
  --ours-merged merged.jsonl --out third_party.json --device cpu
