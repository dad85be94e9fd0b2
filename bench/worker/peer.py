#!/usr/bin/python3
"""The speed peer of `sweep-worker bench`: the same LoRA training step written in PyTorch-Python.

Reads a model directory that `sweep-worker init-model` / `make-builtin` wrote (config.json and
model.safetensors in the llava-hf layout) and times what a user of transformers + PEFT runs on a
CPU: the frozen base in the chosen precision, LoRA A/B in fp32 on q/k/v/o/gate/up/down of the
language model (rank R, alpha 2R, no dropout), the vision tower run as transformers runs it (every
layer, under no_grad since it is frozen), full logits (B, T, V) and the cross-entropy over them,
AdamW on the adapters. Each sample is one image and T text tokens, the last half of the text
supervised; two warm-up steps are not timed. Prints one JSON line with the fields of
`sweep-worker bench`.

Needs Debian's python3-torch (`apt-get install python3-torch`); no other package.
usage: peer.py --model DIR [--batch B] [--text-tokens T] [--steps N] [--threads K] [--rank R]
               [--precision fp32|bf16]
"""

import argparse
import json
import math
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_PLACEHOLDER, IGNORE_INDEX = -200, -100
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        blob = raw[8 + n + begin : 8 + n + end]
        if entry["dtype"] == "BF16":  # numpy has no bfloat16: widen the 16 bits to float32
            bits = np.frombuffer(blob, dtype=np.uint16).astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(blob, dtype=SAFETENSORS_DTYPES[entry["dtype"]])
        out[name] = torch.from_numpy(array.reshape(entry["shape"]).copy())
    return out


def canonical(name):
    # transformers >= 4.52 nests the parts under "model."; map to the older names used below.
    for new, old in (("model.language_model.", "language_model.model."),
                     ("model.vision_tower.", "vision_tower."),
                     ("model.multi_modal_projector.", "multi_modal_projector."),
                     ("lm_head.", "language_model.lm_head.")):
        if name.startswith(new):
            return old + name[len(new):]
    return name


class Model:
    """Weights by name; `linear` adds the LoRA branch where an adapter exists."""

    def __init__(self, model_dir, dtype, rank):
        with open(f"{model_dir}/config.json") as f:
            self.config = json.load(f)
        self.vision, self.text = self.config["vision_config"], self.config["text_config"]
        weights = read_safetensors(f"{model_dir}/model.safetensors")
        self.w = {canonical(k): v.to(dtype) for k, v in weights.items()}
        g = torch.Generator().manual_seed(1)
        self.lora, self.scaling = {}, 2.0  # alpha / r with alpha = 2r
        for name, weight in self.w.items():
            path = name[: -len(".weight")]
            if name.startswith("language_model.model.layers.") and path.rsplit(".", 1)[-1] in LORA_TARGETS:
                out_f, in_f = weight.shape
                bound = 1.0 / math.sqrt(in_f)  # PEFT: kaiming-uniform(a=sqrt(5)) for A, zeros for B
                a = ((torch.rand(rank, in_f, generator=g) * 2 - 1) * bound).requires_grad_()
                b = torch.zeros(out_f, rank).requires_grad_()
                self.lora[path] = (a, b)

    def parameters(self):
        return [t for pair in self.lora.values() for t in pair]

    def linear(self, path, x):
        y = F.linear(x, self.w[path + ".weight"], self.w.get(path + ".bias"))
        if path in self.lora:
            a, b = self.lora[path]  # PEFT runs the adapter in its own dtype and casts back
            y = y + (F.linear(F.linear(x.to(a.dtype), a), b) * self.scaling).to(y.dtype)
        return y


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": quick_gelu, "gelu": F.gelu, "silu": F.silu}


def image_features(m, pixels):
    """CLIP vision tower as transformers runs it for LLaVA: every layer, hidden state
    vision_feature_layer, CLS dropped, then the projector. pixels (B, 3, S, S) -> (B, P, H)."""
    v, w, vp = m.vision, m.w, "vision_tower.vision_model."
    D, nh = v["hidden_size"], v["num_attention_heads"]
    hd, eps = D // nh, v.get("layer_norm_eps", 1e-5)
    x = F.conv2d(pixels.to(w[vp + "embeddings.patch_embedding.weight"].dtype),
                 w[vp + "embeddings.patch_embedding.weight"], stride=v["patch_size"])
    x = x.flatten(2).transpose(1, 2)  # (B, P, D)
    B = x.shape[0]
    cls = w[vp + "embeddings.class_embedding"].expand(B, 1, D)
    x = torch.cat([cls, x], dim=1) + w[vp + "embeddings.position_embedding.weight"]  # (B, P+1, D)
    x = F.layer_norm(x, (D,), w[vp + "pre_layrnorm.weight"], w[vp + "pre_layrnorm.bias"], eps)
    hidden = [x]
    for i in range(v["num_hidden_layers"]):
        lp = f"{vp}encoder.layers.{i}."
        h = F.layer_norm(x, (D,), w[lp + "layer_norm1.weight"], w[lp + "layer_norm1.bias"], eps)
        L = h.shape[1]
        q = m.linear(lp + "self_attn.q_proj", h).view(B, L, nh, hd).transpose(1, 2) * hd**-0.5
        k = m.linear(lp + "self_attn.k_proj", h).view(B, L, nh, hd).transpose(1, 2)
        val = m.linear(lp + "self_attn.v_proj", h).view(B, L, nh, hd).transpose(1, 2)
        att = torch.softmax((q @ k.transpose(-1, -2)).float(), dim=-1).to(q.dtype) @ val
        x = x + m.linear(lp + "self_attn.out_proj", att.transpose(1, 2).reshape(B, L, D))
        h = F.layer_norm(x, (D,), w[lp + "layer_norm2.weight"], w[lp + "layer_norm2.bias"], eps)
        x = x + m.linear(lp + "mlp.fc2", ACTIVATIONS[v["hidden_act"]](m.linear(lp + "mlp.fc1", h)))
        hidden.append(x)
    x = F.layer_norm(x, (D,), w[vp + "post_layernorm.weight"], w[vp + "post_layernorm.bias"], eps)
    feats = hidden[m.config.get("vision_feature_layer", -2)][:, 1:]
    act = ACTIVATIONS[m.config.get("projector_hidden_act", "gelu")]
    return m.linear("multi_modal_projector.linear_2", act(m.linear("multi_modal_projector.linear_1", feats)))


def rms_norm(x, weight, eps):
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def llama_logits(m, x):
    """LlamaForCausalLM on inputs_embeds (B, T, H) -> logits (B, T, V), causal attention."""
    t, w = m.text, m.w
    B, T, H = x.shape
    nh, nkv = t["num_attention_heads"], t["num_key_value_heads"]
    hd, eps = t.get("head_dim", H // nh), t["rms_norm_eps"]
    inv_freq = 1.0 / (t.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2).float() / hd))
    freqs = torch.arange(T).float()[:, None] * inv_freq[None]
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)  # (T, hd)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(t["num_hidden_layers"]):
        lp = f"language_model.model.layers.{i}."
        h = rms_norm(x, w[lp + "input_layernorm.weight"], eps)
        q = m.linear(lp + "self_attn.q_proj", h).view(B, T, nh, hd).transpose(1, 2)
        k = m.linear(lp + "self_attn.k_proj", h).view(B, T, nkv, hd).transpose(1, 2)
        val = m.linear(lp + "self_attn.v_proj", h).view(B, T, nkv, hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)
        val = val.repeat_interleave(nh // nkv, dim=1)
        scores = (q @ k.transpose(-1, -2)).float() / math.sqrt(hd)  # (B, nh, T, T)
        scores = scores.masked_fill(~causal, torch.finfo(torch.float32).min)
        att = torch.softmax(scores, dim=-1).to(q.dtype) @ val
        x = x + m.linear(lp + "self_attn.o_proj", att.transpose(1, 2).reshape(B, T, nh * hd))
        h = rms_norm(x, w[lp + "post_attention_layernorm.weight"], eps)
        x = x + m.linear(lp + "mlp.down_proj",
                         F.silu(m.linear(lp + "mlp.gate_proj", h)) * m.linear(lp + "mlp.up_proj", h))
    x = rms_norm(x, w["language_model.model.norm.weight"], eps)
    return m.linear("language_model.lm_head", x)


def random_batch(m, batch, text_tokens):
    """BOS, the image placeholder, T - 1 text ids; labels on the last T / 2 text tokens."""
    torch.manual_seed(0)
    vocab, size = m.text["vocab_size"], m.vision["image_size"]
    ids = torch.randint(3, vocab, (batch, text_tokens - 1))
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, -(text_tokens // 2):] = ids[:, -(text_tokens // 2):]
    pixels = torch.randn(batch, 3, size, size)
    return ids, labels, pixels


def step(m, optimizer, ids, labels, pixels):
    optimizer.zero_grad()
    with torch.no_grad():  # the vision tower and projector are frozen
        feats = image_features(m, pixels)  # (B, P, H)
    embed = m.w["language_model.model.embed_tokens.weight"]
    bos = embed[torch.ones(ids.shape[0], 1, dtype=torch.long)]
    x = torch.cat([bos, feats, embed[ids]], dim=1)  # (B, 1 + P + T - 1, H)
    ignore = torch.full((ids.shape[0], 1 + feats.shape[1]), IGNORE_INDEX)
    full_labels = torch.cat([ignore, labels], dim=1)
    logits = llama_logits(m, x).float()  # (B, T, V)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                           full_labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)
    loss.backward()
    optimizer.step()
    return loss.item()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--text-tokens", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = p.parse_args(argv)
    for name in ("batch", "steps", "threads", "rank"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if a.text_tokens < 2:
        p.error("--text-tokens must be >= 2")
    torch.set_num_threads(a.threads)
    m = Model(a.model, torch.bfloat16 if a.precision == "bf16" else torch.float32, a.rank)
    optimizer = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.0)
    ids, labels, pixels = random_batch(m, a.batch, a.text_tokens)
    for _ in range(2):
        loss = step(m, optimizer, ids, labels, pixels)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step(m, optimizer, ids, labels, pixels)
    seconds = (time.perf_counter() - t0) / a.steps
    image_tokens = (m.vision["image_size"] // m.vision["patch_size"]) ** 2
    tokens = a.batch * (image_tokens + a.text_tokens)
    print(json.dumps({
        "impl": "pytorch-python", "model": a.model, "precision": a.precision,
        "threads": a.threads, "batch": a.batch, "image_tokens": image_tokens,
        "text_tokens": a.text_tokens, "rank": a.rank, "steps": a.steps,
        "step_ms": seconds * 1e3, "tokens_per_s": tokens / seconds,
        "samples_per_s": a.batch / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "loss": loss}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
