#!/usr/bin/env python3
"""The GPU peer of `sweep-worker bench`: one LoRA training step of LLaVA as transformers + PEFT run it.

Builds LlavaForConditionalGeneration from a config.json (default: llava-1.5-7b-config.json next to
this file) with random weights, created directly on the device in the chosen dtype (bf16 by
default; no CPU fp32 copy), then:

- PEFT LoRA (r, alpha from the options; dropout 0) on q/k/v/o/gate/up/down of the LANGUAGE MODEL
  only: target_modules is a regex, so CLIP's q/k/v/out_proj are not wrapped;
- vision tower and projector frozen (PEFT freezes every non-adapter weight);
- gradient checkpointing on the language model (transformers' default use_reentrant, as LLaVA's
  recipe), with enable_input_require_grads as LLaVA's train.py does;
- AdamW (lr 1e-4, weight decay 0) on the adapters;
- a random batch of B samples, each one image (pixel_values randn [B, 3, S, S]) and T text tokens:
  input_ids = [BOS, <image> x P, T - 1 random ids], P = (S / patch)^2 = 576 for CLIP ViT-L/14-336,
  which is how transformers' processor expands the image token (the model checks the count);
  labels -100 except the last T / 2 text tokens; transformers computes full (B, L, V) logits and
  the shifted cross-entropy.

Two warm-up steps, then --steps timed steps (torch.cuda.synchronize around them). Prints ONE JSON
line: impl, versions, batch, image_tokens, text_tokens, rank, steps, step_ms, tokens_per_s
(= B * (P + T) / step_s), samples_per_s, peak_mem_gb (torch.cuda.max_memory_allocated during
training, GiB), loss.

A config whose image_token_index is outside the text vocabulary (our tiny/small presets use
vocab_size) cannot be fed to transformers as input_ids; the peer then uses vocab_size - 1 as the
image token (its embedding row is replaced by image features anyway) and says so in the JSON.

usage (GPU):  python3 bench/gpu/peer_hf.py [--config FILE] [--batch 16] [--text-tokens 100]
                  [--steps 5] [--rank 128] [--alpha 256] [--gradient-checkpointing 1] [--attn sdpa]
usage (CPU sanity, tiny config):
              python3 bench/gpu/peer_hf.py --device cpu --dtype fp32 --config DIR/config.json \
                  --batch 2 --text-tokens 16 --steps 1 --rank 4 --alpha 8
"""

import argparse
import json
import os
import platform
import resource
import sys
import time

import torch

import peft
import transformers
from peft import LoraConfig, get_peft_model
from transformers import LlavaConfig, LlavaForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))
# fullmatch against module names: "model.language_model.layers.0.self_attn.q_proj" (>= 4.52) or
# "language_model.model.layers.0.self_attn.q_proj" (older); never "model.vision_tower.…".
LANGUAGE_MODEL_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def build_model(config, dtype, device, attn):
    """Random-weight model created on `device` in `dtype` (default dtype + device context)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            try:
                model = LlavaForConditionalGeneration._from_config(config, attn_implementation=attn, dtype=dtype)
            except TypeError:  # transformers < 4.56: no `dtype` argument
                model = LlavaForConditionalGeneration(config)
                if hasattr(model, "set_attn_implementation"):
                    model.set_attn_implementation(attn)
    finally:
        torch.set_default_dtype(previous)
    if any(t.is_meta for t in model.parameters()):
        raise RuntimeError("transformers created the model on the meta device; weights are needed")
    return model.to(device=device, dtype=dtype)  # no-op when the context already did it


def random_batch(config, batch, text_tokens, device, dtype):
    text, vision = config.text_config, config.vision_config
    image_tokens = (vision.image_size // vision.patch_size) ** 2
    if config.vision_feature_select_strategy == "full":
        image_tokens += 1
    g = torch.Generator(device="cpu").manual_seed(0)
    high = min(32000, config.image_token_id, text.vocab_size)  # never the image token itself
    ids = torch.randint(3, high, (batch, text_tokens - 1), generator=g)
    input_ids = torch.cat([torch.full((batch, 1), 1, dtype=torch.long),  # BOS
                           torch.full((batch, image_tokens), config.image_token_id, dtype=torch.long),
                           ids], dim=1)
    labels = torch.full_like(input_ids, -100)
    supervised = text_tokens // 2
    labels[:, -supervised:] = input_ids[:, -supervised:]
    size = vision.image_size
    pixel_values = torch.randn(batch, 3, size, size, generator=g)
    return {"input_ids": input_ids.to(device), "labels": labels.to(device),
            "attention_mask": torch.ones_like(input_ids).to(device),
            "pixel_values": pixel_values.to(device=device, dtype=dtype)}, image_tokens


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=os.path.join(HERE, "llava-1.5-7b-config.json"),
                   help="a LLaVA config.json, or a model directory holding one")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--text-tokens", type=int, default=100)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rank", type=int, default=128)
    p.add_argument("--alpha", type=float, default=256)
    p.add_argument("--gradient-checkpointing", type=int, choices=[0, 1], default=1)
    p.add_argument("--attn", default="sdpa", help="sdpa | eager | flash_attention_2")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    a = p.parse_args(argv)
    if min(a.batch, a.steps, a.rank) < 1 or a.text_tokens < 2:
        p.error("--batch, --steps, --rank must be >= 1 and --text-tokens >= 2")
    device, dtype = torch.device(a.device), DTYPES[a.dtype]
    cuda = device.type == "cuda"

    path = os.path.join(a.config, "config.json") if os.path.isdir(a.config) else a.config
    with open(path) as f:
        config = LlavaConfig.from_dict(json.load(f))
    image_token_overridden = None
    if config.image_token_id >= config.text_config.vocab_size:
        image_token_overridden = config.text_config.vocab_size - 1
        config.image_token_id = image_token_overridden

    torch.manual_seed(0)
    model = build_model(config, dtype, device, a.attn)
    lora = LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=0.0, bias="none",
                      target_modules=LANGUAGE_MODEL_TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)  # freezes every base weight (vision tower, projector too)
    base = model.get_base_model()
    wrapped = [n for n, m in base.named_modules() if hasattr(m, "lora_A")]
    assert wrapped and not any("vision" in n for n in wrapped), "LoRA must wrap the language model only"
    if a.gradient_checkpointing:
        base.enable_input_require_grads()  # LLaVA train.py: reentrant checkpoints need a grad input
        # transformers >= 4.52: model.language_model is the LlamaModel; older: language_model.model
        lm = getattr(getattr(base, "model", None), "language_model", None) or base.language_model
        lm.gradient_checkpointing_enable()  # no kwargs: transformers' default use_reentrant
    funcs = [m._gradient_checkpointing_func for m in base.modules()
             if getattr(m, "_gradient_checkpointing_func", None) is not None]
    reentrant = getattr(funcs[0], "keywords", {}).get("use_reentrant") if funcs else None
    model.train()
    params = [t for t in model.parameters() if t.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    inputs, image_tokens = random_batch(config, a.batch, a.text_tokens, device, dtype)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        return loss

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / a.steps
    tokens = a.batch * (image_tokens + a.text_tokens)
    out = {
        "impl": "transformers+peft",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "cuda": torch.version.cuda, "transformers": transformers.__version__,
                     "peft": peft.__version__,
                     "device": torch.cuda.get_device_name(device) if cuda else platform.processor()},
        "config": path, "dtype": a.dtype,
        "attn": getattr(base.config, "_attn_implementation", a.attn),
        "gradient_checkpointing": bool(a.gradient_checkpointing), "use_reentrant": reentrant,
        "batch": a.batch, "image_tokens": image_tokens, "text_tokens": a.text_tokens,
        "rank": a.rank, "alpha": a.alpha, "lora_modules": len(wrapped),
        "trainable_params": sum(t.numel() for t in params), "steps": a.steps,
        "step_ms": seconds * 1e3, "tokens_per_s": tokens / seconds,
        "samples_per_s": a.batch / seconds,
        "peak_mem_gb": (torch.cuda.max_memory_allocated(device) / 2**30 if cuda
                        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20),
        "loss": loss.item(),
    }
    if image_token_overridden is not None:
        out["image_token_index_overridden"] = image_token_overridden
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
