#!/usr/bin/python3
"""Writes the golden fixture of tests/model/golden_test.cpp.

An independent PyTorch implementation of the tiny LLaVA forward, written from the Hugging Face
transformers (CLIPVisionModel, LlavaForConditionalGeneration, LlamaForCausalLM) and PEFT LoRA
semantics, computed in float64. It writes, next to itself:

  model/config.json, model/model.safetensors        the base model, llava-hf layout, F32
  adapter/adapter_config.json,                      a PEFT LoRA adapter on q,k,v,o,gate,up,down
  adapter/adapter_model.safetensors                 with non-zero B, F32
  expected.safetensors                              inputs, logits, loss, gradients, AdamW losses

Needs only Debian's python3-torch (numpy comes with it): `apt-get install -y python3-torch`, then
`/usr/bin/python3 tests/model/golden/make_golden.py`. The output is deterministic.
"""

import json
import math
import os
import re
import struct

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 1234
IGNORE_INDEX = -100
IMAGE_PLACEHOLDER = -200  # LLaVA's IMAGE_TOKEN_INDEX in input_ids

VISION = {
    "model_type": "clip_vision_model",
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_channels": 3,
    "image_size": 8,
    "patch_size": 4,  # 4 patches: 4 image tokens
    "layer_norm_eps": 1e-5,
    "hidden_act": "quick_gelu",
    "projection_dim": 16,
}
TEXT = {
    "model_type": "llama",
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 40,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,  # grouped-query attention: 2 query heads per key/value head
    "head_dim": 8,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "rope_theta": 1000.0,  # not the default 10000, so the value must be read from the file
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}
CONFIG = {
    "architectures": ["LlavaForConditionalGeneration"],
    "model_type": "llava",
    "vision_config": VISION,
    "text_config": TEXT,
    "image_token_index": 64,
    "projector_hidden_act": "gelu",
    "vision_feature_layer": -2,
    "vision_feature_select_strategy": "default",
    "torch_dtype": "float32",
}
LORA = {
    "peft_type": "LORA",
    "task_type": "CAUSAL_LM",
    "base_model_name_or_path": "golden-tiny-llava",
    "r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "bias": "none",
    "use_rslora": False,
    "rank_pattern": {"down_proj": 2},  # scaling 8/2 = 4 on down_proj
    "alpha_pattern": {"o_proj": 2},  # scaling 2/4 = 0.5 on o_proj; 8/4 = 2 elsewhere
    "modules_to_save": None,
    "fan_in_fan_out": False,
    "inference_mode": True,
}
# AdamW on the LoRA weights and the projector: lr, beta1, beta2, eps, weight_decay.
ADAMW = [1e-2, 0.9, 0.999, 1e-8, 0.0]
ADAMW_STEPS = 3

# Three samples: the image placeholder after the BOS, the placeholder later in the prompt, and a
# text-only sample. Labels supervise the answers; the placeholder's label is ignored.
SAMPLES = [
    ([1, 5, IMAGE_PLACEHOLDER, 7, 8, 9, 10, 2], [-100, -100, -100, -100, 8, 9, 10, 2], True),
    ([1, 12, 13, IMAGE_PLACEHOLDER, 14, 15, 16], [-100, -100, -100, -100, -100, 15, 16], True),
    ([1, 20, 21, 22, 23, 24, 2], [-100, -100, -100, 22, 23, 24, 2], False),
]

# ---------------------------------------------------------------------------------------------
# safetensors: u64 little-endian header length, JSON header, raw little-endian row-major bytes.

DTYPES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int64: ("I64", "<i8")}
NP_OF = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        code, np_dtype = DTYPES[t.dtype]
        data = t.detach().contiguous().numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=NP_OF[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------------------------------------
# Weights. Scales keep activations of order one (so a wrong norm, scale or activation changes the
# logits visibly); norm weights and biases are not the identity, so forgetting one shows.


def make_base_weights(g):
    def normal(*shape, std):
        return torch.randn(*shape, generator=g) * std

    def linear(w, name, out_f, in_f, bias):
        w[name + ".weight"] = normal(out_f, in_f, std=1.0 / math.sqrt(in_f))
        if bias:
            w[name + ".bias"] = normal(out_f, std=0.1)

    def norm(w, name, bias):
        w[name + ".weight"] = 1.0 + normal(w_dim[name], std=0.1)
        if bias:
            w[name + ".bias"] = normal(w_dim[name], std=0.1)

    v, t = VISION, TEXT
    D, P, C = v["hidden_size"], v["patch_size"], v["num_channels"]
    N = (v["image_size"] // P) ** 2
    H, hd = t["hidden_size"], t["head_dim"]
    nh, nkv = t["num_attention_heads"], t["num_key_value_heads"]
    w, w_dim = {}, {}
    vp = "vision_tower.vision_model."
    w[vp + "embeddings.class_embedding"] = normal(D, std=1.0)
    w[vp + "embeddings.patch_embedding.weight"] = normal(D, C, P, P, std=1.0 / math.sqrt(C * P * P))
    w[vp + "embeddings.position_embedding.weight"] = normal(N + 1, D, std=0.5)
    w_dim[vp + "pre_layrnorm"] = D
    norm(w, vp + "pre_layrnorm", bias=True)
    for i in range(v["num_hidden_layers"]):
        lp = f"{vp}encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(w, lp + "self_attn." + proj, D, D, bias=True)
        for ln in ("layer_norm1", "layer_norm2"):
            w_dim[lp + ln] = D
            norm(w, lp + ln, bias=True)
        linear(w, lp + "mlp.fc1", v["intermediate_size"], D, bias=True)
        linear(w, lp + "mlp.fc2", D, v["intermediate_size"], bias=True)
    w_dim[vp + "post_layernorm"] = D
    norm(w, vp + "post_layernorm", bias=True)
    linear(w, "multi_modal_projector.linear_1", H, D, bias=True)
    linear(w, "multi_modal_projector.linear_2", H, H, bias=True)
    mp = "language_model.model."
    w[mp + "embed_tokens.weight"] = normal(t["vocab_size"], H, std=1.0)
    for i in range(t["num_hidden_layers"]):
        lp = f"{mp}layers.{i}."
        linear(w, lp + "self_attn.q_proj", nh * hd, H, bias=False)
        linear(w, lp + "self_attn.k_proj", nkv * hd, H, bias=False)
        linear(w, lp + "self_attn.v_proj", nkv * hd, H, bias=False)
        linear(w, lp + "self_attn.o_proj", H, nh * hd, bias=False)
        linear(w, lp + "mlp.gate_proj", t["intermediate_size"], H, bias=False)
        linear(w, lp + "mlp.up_proj", t["intermediate_size"], H, bias=False)
        linear(w, lp + "mlp.down_proj", H, t["intermediate_size"], bias=False)
        for ln in ("input_layernorm", "post_attention_layernorm"):
            w_dim[lp + ln] = H
            norm(w, lp + ln, bias=False)
    w_dim[mp + "norm"] = H
    norm(w, mp + "norm", bias=False)
    linear(w, "language_model.lm_head", t["vocab_size"], H, bias=False)
    return w


def pattern_value(patterns, path, fallback):
    # PEFT: the first key with re.match(rf"(.*\.)?({key})$", module path) wins.
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", path):
            return value
    return fallback


def lora_modules(base):
    """Targeted module paths of the language model with (r, alpha), in model order."""
    out = []
    for name in base:
        if not (name.startswith("language_model.") and name.endswith(".weight")):
            continue
        path = name[: -len(".weight")]
        if path.rsplit(".", 1)[-1] in LORA["target_modules"]:
            r = pattern_value(LORA["rank_pattern"], path, LORA["r"])
            alpha = pattern_value(LORA["alpha_pattern"], path, LORA["lora_alpha"])
            out.append((path, r, alpha))
    return out


def make_lora_weights(g, base):
    # A as PEFT initialises it (kaiming-uniform a=sqrt(5): U(+-1/sqrt(in))); B non-zero, as after
    # some training, so that the gradient of A is not zero.
    w = {}
    for path, r, _ in lora_modules(base):
        out_f, in_f = base[path + ".weight"].shape
        bound = 1.0 / math.sqrt(in_f)
        w[path + ".lora_A.weight"] = (torch.rand(r, in_f, generator=g) * 2 - 1) * bound
        w[path + ".lora_B.weight"] = torch.randn(out_f, r, generator=g) * 0.2
    return w


# ---------------------------------------------------------------------------------------------
# The model, float64, one sample at a time (no padding to get wrong).


def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


ACT = {"quick_gelu": quick_gelu, "gelu": lambda x: F.gelu(x), "silu": F.silu}


class Lora:
    """PEFT LoRA: y = x W^T (+ b) + scaling * B(A(dropout(x))), dropout 0 here."""

    def __init__(self, base, adapters):
        self.base, self.adapters = base, adapters
        self.scaling = {p: alpha / r for p, r, alpha in lora_modules(base)}

    def linear(self, path, x):
        y = x @ self.base[path + ".weight"].T
        if path + ".bias" in self.base:
            y = y + self.base[path + ".bias"]
        if path in self.scaling:
            a, b = self.adapters[path + ".lora_A.weight"], self.adapters[path + ".lora_B.weight"]
            y = y + (x @ a.T) @ b.T * self.scaling[path]
        return y


def clip_features(m, pixels):
    """CLIPVisionModel hidden_states[vision_feature_layer], CLS dropped. pixels [3,S,S] -> [N,D]."""
    v, w = VISION, m.base
    vp = "vision_tower.vision_model."
    D, nh = v["hidden_size"], v["num_attention_heads"]
    hd = D // nh
    patches = F.conv2d(pixels[None], w[vp + "embeddings.patch_embedding.weight"], stride=v["patch_size"])
    x = patches.flatten(2).transpose(1, 2)[0]  # [N, D], row-major over the patch grid
    x = torch.cat([w[vp + "embeddings.class_embedding"][None], x])  # [N+1, D]
    x = x + w[vp + "embeddings.position_embedding.weight"]
    x = layer_norm(x, w[vp + "pre_layrnorm.weight"], w[vp + "pre_layrnorm.bias"], v["layer_norm_eps"])
    hidden_states = [x]
    for i in range(v["num_hidden_layers"]):
        lp = f"{vp}encoder.layers.{i}."
        h = layer_norm(x, w[lp + "layer_norm1.weight"], w[lp + "layer_norm1.bias"], v["layer_norm_eps"])
        q = m.linear(lp + "self_attn.q_proj", h).view(-1, nh, hd).transpose(0, 1) * hd**-0.5
        k = m.linear(lp + "self_attn.k_proj", h).view(-1, nh, hd).transpose(0, 1)
        val = m.linear(lp + "self_attn.v_proj", h).view(-1, nh, hd).transpose(0, 1)
        att = torch.softmax(q @ k.transpose(1, 2), dim=-1) @ val  # [nh, N+1, hd], not causal
        x = x + m.linear(lp + "self_attn.out_proj", att.transpose(0, 1).reshape(-1, D))
        h = layer_norm(x, w[lp + "layer_norm2.weight"], w[lp + "layer_norm2.bias"], v["layer_norm_eps"])
        x = x + m.linear(lp + "mlp.fc2", ACT[v["hidden_act"]](m.linear(lp + "mlp.fc1", h)))
        hidden_states.append(x)
    feats = hidden_states[CONFIG["vision_feature_layer"]]
    return feats[1:] if CONFIG["vision_feature_select_strategy"] == "default" else feats


def project(m, feats):
    h = ACT[CONFIG["projector_hidden_act"]](m.linear("multi_modal_projector.linear_1", feats))
    return m.linear("multi_modal_projector.linear_2", h)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def llama_logits(m, embeds):
    """LlamaForCausalLM on inputs_embeds [T, H] -> logits [T, V]."""
    t, w = TEXT, m.base
    T = embeds.shape[0]
    nh, nkv, hd = t["num_attention_heads"], t["num_key_value_heads"], t["head_dim"]
    inv_freq = 1.0 / (t["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None]  # [T, hd/2]
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    x = embeds
    for i in range(t["num_hidden_layers"]):
        lp = f"language_model.model.layers.{i}."
        h = rms_norm(x, w[lp + "input_layernorm.weight"], t["rms_norm_eps"])
        q = m.linear(lp + "self_attn.q_proj", h).view(T, nh, hd).transpose(0, 1)
        k = m.linear(lp + "self_attn.k_proj", h).view(T, nkv, hd).transpose(0, 1)
        val = m.linear(lp + "self_attn.v_proj", h).view(T, nkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=0)  # query head j reads key/value head j // groups
        val = val.repeat_interleave(nh // nkv, dim=0)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(hd)
        scores = scores.masked_fill(~causal, float("-inf"))
        att = torch.softmax(scores, dim=-1) @ val  # [nh, T, hd]
        x = x + m.linear(lp + "self_attn.o_proj", att.transpose(0, 1).reshape(T, nh * hd))
        h = rms_norm(x, w[lp + "post_attention_layernorm.weight"], t["rms_norm_eps"])
        gate = F.silu(m.linear(lp + "mlp.gate_proj", h))
        x = x + m.linear(lp + "mlp.down_proj", gate * m.linear(lp + "mlp.up_proj", h))
    x = rms_norm(x, w["language_model.model.norm.weight"], t["rms_norm_eps"])
    return m.linear("language_model.lm_head", x)


def splice(m, ids, labels, pixels):
    """LLaVA's prepare_inputs_labels_for_multimodal for one sample: the placeholder becomes the
    image's projected features, with labels IGNORE_INDEX."""
    embed = m.base["language_model.model.embed_tokens.weight"]
    parts, out_labels = [], []
    for tok, lab in zip(ids, labels):
        if tok == IMAGE_PLACEHOLDER:
            feats = project(m, clip_features(m, pixels))
            parts.append(feats)
            out_labels += [IGNORE_INDEX] * feats.shape[0]
        else:
            parts.append(embed[tok][None])
            out_labels.append(lab)
    return torch.cat(parts), torch.tensor(out_labels)


def forward(m, pixel_values):
    """Per-sample logits and the batch loss: cross-entropy of logits[t] against labels[t+1],
    averaged over every supervised token of the batch."""
    logits, total, count = [], 0.0, 0
    for i, (ids, labels, _) in enumerate(SAMPLES):
        embeds, lab = splice(m, ids, labels, pixel_values[i])
        lg = llama_logits(m, embeds)
        logits.append(lg)
        target = lab[1:]
        total = total + F.cross_entropy(lg[:-1], target, ignore_index=IGNORE_INDEX, reduction="sum")
        count += int((target != IGNORE_INDEX).sum())
    return logits, total / count


# ---------------------------------------------------------------------------------------------


def main():
    g = torch.Generator().manual_seed(SEED)
    base32 = make_base_weights(g)
    lora32 = make_lora_weights(g, base32)
    S = VISION["image_size"]
    pixel_values32 = torch.randn(len(SAMPLES), 3, S, S, generator=g)
    for i, (_, _, has_image) in enumerate(SAMPLES):
        if not has_image:
            pixel_values32[i].zero_()

    model_dir, adapter_dir = os.path.join(HERE, "model"), os.path.join(HERE, "adapter")
    os.makedirs(model_dir, exist_ok=True)
    os.makedirs(adapter_dir, exist_ok=True)
    write_json(os.path.join(model_dir, "config.json"), CONFIG)
    write_safetensors(os.path.join(model_dir, "model.safetensors"), base32, {"format": "pt"})
    write_json(os.path.join(adapter_dir, "adapter_config.json"), LORA)
    write_safetensors(
        os.path.join(adapter_dir, "adapter_model.safetensors"),
        {"base_model.model." + k: v for k, v in lora32.items()},
        {"format": "pt"},
    )
    assert all(torch.equal(base32[k], v) for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items())

    # float64 reference from the float32 weights as stored.
    base = {k: v.double() for k, v in base32.items()}
    projector = [k for k in base if k.startswith("multi_modal_projector.")]
    lora = {k: v.double().requires_grad_() for k, v in lora32.items()}
    for k in projector:
        base[k].requires_grad_()
    pixel_values = pixel_values32.double()
    m = Lora(base, lora)

    logits, loss = forward(m, pixel_values)
    trainable = {**lora, **{k: base[k] for k in projector}}
    grads = torch.autograd.grad(loss, list(trainable.values()))

    expected = {"inputs.pixel_values": pixel_values32}
    expected["inputs.has_image"] = torch.tensor([int(s[2]) for s in SAMPLES])
    for i, (ids, labels, _) in enumerate(SAMPLES):
        expected[f"inputs.input_ids.{i}"] = torch.tensor(ids)
        expected[f"inputs.labels.{i}"] = torch.tensor(labels)
        expected[f"logits.{i}"] = logits[i].detach()
    expected["loss"] = loss.detach().reshape(1)
    for (name, _), grad in zip(trainable.items(), grads):
        expected["grad." + name] = grad

    # A few AdamW steps on the LoRA weights and the projector; losses before each update and after
    # the last one.
    lr, b1, b2, eps, wd = ADAMW
    opt = torch.optim.AdamW(list(trainable.values()), lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    losses = []
    for step in range(ADAMW_STEPS + 1):
        opt.zero_grad()
        _, l = forward(m, pixel_values)
        losses.append(float(l))
        if step < ADAMW_STEPS:
            l.backward()
            opt.step()
    expected["adamw.hparams"] = torch.tensor(ADAMW, dtype=torch.float64)
    expected["adamw.losses"] = torch.tensor(losses, dtype=torch.float64)

    write_safetensors(os.path.join(HERE, "expected.safetensors"), expected, {"format": "pt"})
    print(f"loss {float(loss):.6f}; AdamW losses {[round(x, 6) for x in losses]}")
    print(f"{len(base32)} base tensors, {len(lora32)} LoRA tensors, {len(expected)} expected tensors")


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    main()
