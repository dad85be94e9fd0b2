#!/usr/bin/env python3
"""Does the Python ecosystem (transformers + PEFT) read what sweep-worker writes, and score it alike?

scripts/device-check.sh (stage third_party, through scripts/device/third_party_flow.sh) makes the
inputs with our tools, then calls this script; by hand:

    M=$(sweep-worker make-builtin tiny-llava)                  # base model dir (or init-model --out)
    CKPT=<run_dir>/checkpoints/step-000040                     # a trained LoRA job's checkpoint
    sweep-worker merge "$CKPT" --base "$M" --out "$T/merged"
    S="--data D.json --image-folder I --precision fp32 --device cpu"   # fp32: the 1e-4 comparison
    sweep-worker score --model "$M" $S > "$T/base.jsonl"
    sweep-worker score --model "$M" --adapter "$CKPT" $S > "$T/adapter.jsonl"
    sweep-worker score --model "$T/merged" $S > "$T/merged.jsonl"
    python3 scripts/device/third_party_check.py --model "$M" --adapter "$CKPT" --merged "$T/merged" \
        --data D.json --image-folder I --ours-base "$T/base.jsonl" --ours-adapter "$T/adapter.jsonl" \
        --ours-merged "$T/merged.jsonl" --out "$T/third_party.json" [--device cpu|cuda]

`sweep-worker score` prints one JSON line per sample ({"id", "loss", "tokens", ...}: loss = mean
over the sample's supervised tokens) and a {"summary": true, "val_loss", ...} line; both are read.

Checks (exit 1 if any fails; each failure names what differed):
 a. LlavaForConditionalGeneration.from_pretrained(--model, fp32, output_loading_info=True) reports
    no missing / unexpected / mismatched keys;
 b. its per-sample loss equals ours (--tol 1e-4), with the samples prepared as our data layer does
    (docs/data.md), re-implemented here: vicuna_v1 prompt, SentencePiece with the slow
    LlamaTokenizer's special-token split, tokenizer_image_token and the preprocess_v1 label mask,
    expand2square + Pillow-exact bicubic + centre crop + CLIP normalisation (PNG decoded here, other
    formats through Pillow), (image_size / patch_size)^2 image positions, cut to --max-length;
    supervised-token counts must match too;
 c. PeftModel.from_pretrained(base + the projector of non_lora_trainables, --adapter) wraps exactly
    the modules of adapter_model.safetensors, holds the file's A/B values, and gives our loss;
 d. merge_and_unload() equals the tensors of --merged (max |diff| <= --weight-tol), and --merged
    loaded by transformers loads cleanly and gives our loss on it.
With image_token_index inside the text vocabulary the model runs as transformers runs it (input_ids
with the image token repeated + pixel_values); otherwise (our presets use vocab_size, which
transformers cannot embed) the model's own get_image_features are spliced into inputs_embeds here.
The last stdout line is a one-line JSON summary; --out gets the full report.
"""

import argparse
import json
import math
import os
import re
import struct
import sys
import zlib

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file
from transformers import LlavaForConditionalGeneration

PLACEHOLDER, IGNORE = -200, -100
SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant "
          "gives helpful, detailed, and polite answers to the user's questions.")
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
PAD_COLOR = (122, 116, 104)


# ---- text: data/conversation.cpp, data/tokenizer.cpp, data/preprocess.cpp ----
def strip(s):  # C++ isspace set
    return s.strip(" \t\n\r\v\f")


def template_turns(sample, has_image):
    turns = [dict(t) for t in sample["conversations"]]
    if turns and turns[0]["from"] != "human":
        turns = turns[1:]
    for j, t in enumerate(turns):
        if t["from"] != ("human" if j % 2 == 0 else "gpt"):
            raise ValueError(f"sample {sample.get('id')}: roles must alternate")
        if has_image and "<image>" in t["value"]:
            t["value"] = strip("<image>\n" + strip(t["value"].replace("<image>", "")))
    return turns


def vicuna_v1(turns):
    out = SYSTEM + " "
    for j, t in enumerate(turns):
        role = "USER" if j % 2 == 0 else "ASSISTANT"
        out += role + ":" if not t["value"] else role + ": " + t["value"] + (" " if j % 2 == 0 else "</s>")
    return out


class Tokenizer:
    """The slow LlamaTokenizer (legacy): split out <unk> </s> <s>, encode each other piece alone."""

    def __init__(self, path):
        self.sp = spm.SentencePieceProcessor(model_file=path)
        self.special = {"<unk>": self.sp.unk_id(), "</s>": self.sp.eos_id(), "<s>": self.sp.bos_id()}

    def encode(self, text, add_bos):
        out = [self.sp.bos_id()] if add_bos else []
        for piece in re.split(r"(<unk>|</s>|<s>)", text):
            out += [self.special[piece]] if piece in self.special else (self.sp.encode(piece) if piece else [])
        return out


def tokenize_text(text, tok, has_image):
    if not has_image:
        return tok.encode(text, True)
    ids = []
    for c, chunk in enumerate(text.split("<image>")):  # LLaVA's tokenizer_image_token
        ids += ([PLACEHOLDER] if c else []) + tok.encode(chunk, True)[1 if c else 0:]
    return ids


def mask(labels, begin, end):  # labels[begin:end] = IGNORE with Python's clamping of both ends
    n = len(labels)
    begin, end = min(max(begin, 0), n), min(max(end, 0), n)
    labels[begin:max(begin, end)] = [IGNORE] * (max(begin, end) - begin)


def tokenize_sample(sample, tok, has_image, max_length):
    conversation = vicuna_v1(template_turns(sample, has_image))
    ids = tokenize_text(conversation, tok, has_image)
    labels, total = list(ids), sum(1 for i in ids if i != tok.sp.unk_id())
    cur, sep = 1, " ASSISTANT: "
    mask(labels, 0, cur)
    for rou in conversation.split("</s>"):
        if not rou:
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        instruction = len(tokenize_text(parts[0] + sep, tok, has_image)) - 2
        mask(labels, cur, cur + instruction)
        cur += len(tokenize_text(rou, tok, has_image))
    mask(labels, cur, len(labels))
    if (max_length <= 0 or cur < max_length) and cur != total:
        mask(labels, 0, len(labels))  # LLaVA's "tokenization mismatch"
    return ids, labels


# ---- images: data/image.cpp ----
def decode_png(data):
    pos, idat, palette = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk, pos = data[pos + 8:pos + 8 + length], pos + 12 + length
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"PLTE":
            palette = np.frombuffer(chunk, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    if depth != 8 or interlace:
        raise ValueError("only 8-bit non-interlaced PNG is decoded here (install Pillow for others)")
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    raw, stride = zlib.decompress(b"".join(idat)), w * bpp
    prev, rows = [0] * stride, []
    for y in range(h):
        f, line = raw[y * (stride + 1)], list(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    px = np.array(rows, np.uint8).reshape(h, w, bpp)
    if color == 3:
        return palette[px[..., 0]]
    return np.repeat(px[..., :1], 3, axis=2) if color in (0, 4) else px[..., :3]


def decode_image(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return decode_png(data)
    from PIL import Image  # JPEG etc. (our stb_image decoder is not bit-exact with libjpeg anyway)
    return np.asarray(Image.open(path).convert("RGB"))


def bicubic(x):
    x = abs(x)
    return ((1.5 * x - 2.5) * x * x + 1) if x < 1 else ((((x - 5) * x + 8) * x - 4) * -0.5) if x < 2 else 0.0


def resample(img, out_size, axis):
    """Pillow's 8-bit fixed-point bicubic along one axis (precompute_coeffs, normalize_coeffs_8bpc)."""
    in_size = img.shape[axis]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    idx, k = np.zeros((out_size, ksize), np.int64), np.zeros((out_size, ksize), np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        count = min(int(center + support + 0.5), in_size) - xmin
        w = [bicubic((x + xmin - center + 0.5) * (1.0 / filterscale)) for x in range(count)]
        ww = 0.0
        for v in w:
            ww += v
        for x in range(count):
            v = w[x] / ww if ww != 0.0 else w[x]
            k[xx, x] = int(-0.5 + v * (1 << 22)) if v < 0 else int(0.5 + v * (1 << 22))
            idx[xx, x] = xmin + x
    src = np.moveaxis(img.astype(np.int64), axis, 0)  # (in, other, 3)
    acc = (1 << 21) + np.einsum("okc,ok->oc", src[idx].reshape(out_size, ksize, -1), k)
    out = np.clip(acc >> 22, 0, 255).astype(np.uint8).reshape((out_size,) + src.shape[1:])
    return np.moveaxis(out, 0, axis)


def clip_preprocess(rgb, size):
    h, w = rgb.shape[:2]
    if h != w:  # expand2square
        side = max(h, w)
        sq = np.empty((side, side, 3), np.uint8)
        sq[:] = PAD_COLOR
        top, left = (side - h) // 2, (side - w) // 2
        sq[top:top + h, left:left + w] = rgb
        rgb, h, w = sq, side, side
    short, long_ = min(h, w), max(h, w)
    new_long = int(float(size * long_) / short)
    tw, th = (new_long, size) if w > h else (size, new_long)
    if w != tw:
        rgb = resample(rgb, tw, 1)
    if h != th:
        rgb = resample(rgb, th, 0)
    top, left = (th - size) // 2, (tw - size) // 2
    rgb = rgb[top:top + size, left:left + size]
    x = (rgb.astype(np.float64) * (1.0 / 255.0)).astype(np.float32)
    return torch.from_numpy(((x - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1).copy())


def load_samples(a, tok):
    with open(a.data) as f:
        raw = json.load(f)
    samples = []
    for i, s in enumerate(raw):
        sid = str(s["id"]) if s.get("id") not in (None, "") else str(i)
        has_image = bool(s.get("image"))
        ids, labels = tokenize_sample(s, tok, has_image, a.max_length)
        pixels = clip_preprocess(decode_image(os.path.join(a.image_folder, s["image"])),
                                 a.image_size) if has_image else None
        samples.append({"id": sid, "ids": ids, "labels": labels, "pixels": pixels})
    return samples


# ---- models ----
def canonical(name):
    """A tensor/module name in the llava-hf (< 4.52) layout, whatever layout it comes in."""
    name = name.replace(".base_layer.", ".")
    for new, old in (("model.language_model.", "language_model.model."), ("model.vision_tower.", "vision_tower."),
                     ("model.multi_modal_projector.", "multi_modal_projector."), ("lm_head.", "language_model.lm_head.")):
        if name.startswith(new):
            return old + name[len(new):]
    return name


def load_model(path, a, report, check):
    model, info = LlavaForConditionalGeneration.from_pretrained(
        path, dtype=torch.float32, output_loading_info=True, attn_implementation=a.attn)
    info = info if isinstance(info, dict) else vars(info)
    bad = {k: sorted(map(str, v)) for k, v in info.items() if v}
    report[f"{check}_loading_info"] = bad
    if bad:
        fail(report, check, f"from_pretrained({path}) loading info not clean: {bad}")
    return model.to(a.device).eval()


@torch.no_grad()
def sample_loss(model, s, a):
    """Mean cross-entropy over the supervised tokens, and their number, as our evaluator does."""
    cfg, dev = model.config, a.device
    n_img = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
    n_img += cfg.vision_feature_select_strategy == "full"
    labels = []
    for i, l in zip(s["ids"], s["labels"]):
        labels += [IGNORE] * n_img if i == PLACEHOLDER else [l]
    labels = torch.tensor(labels[:a.max_length], device=dev)
    L, has_image = labels.numel(), PLACEHOLDER in s["ids"]
    pixels = s["pixels"][None].to(dev) if has_image else None
    if has_image and cfg.image_token_id < cfg.text_config.vocab_size and \
            s["ids"].index(PLACEHOLDER) + n_img <= L:
        ids = []
        for i in s["ids"]:
            ids += [cfg.image_token_id] * n_img if i == PLACEHOLDER else [i]
        out = model(input_ids=torch.tensor([ids[:L]], device=dev), pixel_values=pixels,
                    attention_mask=torch.ones(1, L, dtype=torch.long, device=dev), use_cache=False)
        path = "input_ids+pixel_values"
    else:
        ids = torch.tensor([max(i, 0) for i in s["ids"]], device=dev)
        text = model.get_input_embeddings()(ids)
        parts = [text]
        if has_image:
            feats = model.get_image_features(pixel_values=pixels)
            feats = getattr(feats, "pooler_output", feats)  # transformers 5: output object, list per image
            feats = torch.cat(list(feats)) if isinstance(feats, (list, tuple)) else feats.reshape(-1, feats.shape[-1])
            at = s["ids"].index(PLACEHOLDER)
            parts = [text[:at], feats.to(text.dtype), text[at + 1:]]
        embeds = torch.cat(parts)[:L][None]
        out = model(inputs_embeds=embeds, attention_mask=torch.ones(1, L, dtype=torch.long, device=dev),
                    use_cache=False)
        path = "inputs_embeds (spliced here)"
    losses = F.cross_entropy(out.logits[0, :-1].float(), labels[1:], ignore_index=IGNORE, reduction="none")
    n = int((labels[1:] != IGNORE).sum())
    return (losses.double().sum().item() / n if n else 0.0), n, path


def read_ours(path):  # `sweep-worker score` stdout: per-sample lines, then {"summary": true, ...}
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.lstrip().startswith("{")]
    return ({str(j["id"]): j for j in lines if not j.get("summary")},
            next((j for j in lines if j.get("summary")), None))


def compare_losses(check, model, samples, ours_path, a, report):
    ours, summary = read_ours(ours_path)
    rows, total, tokens, path = [], 0.0, 0, None
    for s in samples:
        loss, n, path = sample_loss(model, s, a)
        total, tokens = total + loss * n, tokens + n
        o = ours.get(s["id"])
        rows.append({"id": s["id"], "hf": loss, "tokens": n, "ours": o and o["loss"], "ours_tokens": o and o["tokens"]})
        if o is not None and (abs(o["loss"] - loss) > a.tol or o["tokens"] != n):
            fail(report, check, f"sample {s['id']}: loss {loss:.6f} vs ours {o['loss']:.6f}, tokens {n} vs {o['tokens']}")
    mean = total / tokens if tokens else 0.0
    if not ours:  # no per-sample lines: compare the token-weighted mean
        if summary is None or abs(summary["val_loss"] - mean) > a.tol:
            fail(report, check, f"val_loss {mean:.6f} vs ours {summary and summary['val_loss']}")
    elif len(ours) != len(samples) or any(s["id"] not in ours for s in samples):
        fail(report, check, f"{ours_path} scores {len(ours)} samples, the data has {len(samples)}")
    worst = max((abs(r["hf"] - r["ours"]) for r in rows if r["ours"] is not None), default=None)
    report[check] = {"path": path, "val_loss_hf": mean, "val_loss_ours": summary and summary["val_loss"],
                     "max_abs_diff": worst, "samples": rows}
    return worst


def fail(report, check, message):
    report["failures"].append(f"{check}: {message}")


def adapter_modules(path):
    tensors = load_file(os.path.join(path, "adapter_model.safetensors"))
    out = {}
    for key, t in tensors.items():
        m = re.fullmatch(r"base_model\.model\.(.+)\.(lora_[AB])(?:\.default)?\.weight", key)
        if m:
            out.setdefault(canonical(m.group(1)), {})[m.group(2)] = t
    return out


def model_tensors(path):
    index = os.path.join(path, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    return {canonical(k): v for f in files for k, v in load_file(os.path.join(path, f)).items()}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("model", "adapter", "merged", "data", "image-folder", "ours-base", "ours-adapter", "ours-merged", "out"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--max-length", type=int, default=2048, help="as `sweep-worker score --max-length`")
    p.add_argument("--tol", type=float, default=1e-4, help="per-sample loss, absolute")
    p.add_argument("--weight-tol", type=float, default=1e-5, help="merged weights, max abs diff")
    p.add_argument("--device", default="cpu")
    p.add_argument("--attn", default="eager")
    a = p.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    report = {"failures": []}

    # (a) + (b): the base model
    base = load_model(a.model, a, report, "a_base")
    a.image_size = base.config.vision_config.image_size
    samples = load_samples(a, Tokenizer(os.path.join(a.model, "tokenizer.model")))
    compare_losses("b_base_loss", base, samples, a.ours_base, a, report)

    # (c): PEFT reads the adapter; LLaVA's non_lora_trainables (the projector) go into the base first
    projector = os.path.join(a.adapter, "non_lora_trainables.safetensors")
    if os.path.exists(projector):
        params = {canonical(k): v for k, v in base.named_parameters()}
        with torch.no_grad():
            for k, t in load_file(projector).items():
                params[canonical(k)].copy_(t)
    peft_model = PeftModel.from_pretrained(base, a.adapter).eval()
    trained = adapter_modules(a.adapter)
    wrapped = {canonical(n.removeprefix("base_model.model.")): m
               for n, m in peft_model.named_modules() if isinstance(m, LoraLayer)}
    extra, missing = sorted(set(wrapped) - set(trained)), sorted(set(trained) - set(wrapped))
    report["c_modules"] = {"trained": len(trained), "wrapped": len(wrapped), "extra": extra, "missing": missing}
    if extra or missing:
        hint = (" (all in the vision tower: the adapter_config target_modules names also match CLIP's"
                " q/k/v_proj; an exclude_modules regex would keep PEFT off them)"
                if extra and all(n.startswith("vision_tower.") for n in extra) else "")
        fail(report, "c_modules", f"PEFT wrapped {len(extra)} modules not in the file {extra[:3]}, "
                                  f"missed {len(missing)} {missing[:3]}{hint}")
    differ = [f"{n}.{ab}" for n in sorted(set(trained) & set(wrapped)) for ab in ("lora_A", "lora_B")
              if not torch.equal(getattr(wrapped[n], ab)["default"].weight.detach().cpu().float(),
                                 trained[n][ab].float())]
    if differ:  # e.g. keys not mapped onto this transformers' module paths (file: < 4.52 layout)
        fail(report, "c_values", f"{len(differ)} LoRA tensors hold other values than the file: {differ[:3]}")
    compare_losses("c_adapter_loss", peft_model.get_base_model(), samples, a.ours_adapter, a, report)

    # (d): PEFT's merge vs ours, then our merged directory through transformers
    merged_hf = {canonical(k): v.detach().cpu() for k, v in peft_model.merge_and_unload().named_parameters()}
    ours = model_tensors(a.merged)
    diffs = {k: (merged_hf[k].float() - ours[k].float()).abs().max().item()
             for k in sorted(set(ours) & set(merged_hf)) if merged_hf[k].shape == ours[k].shape}
    odd = sorted(set(ours) ^ set(merged_hf)) + [k for k in set(ours) & set(merged_hf) if k not in diffs]
    worst = max(diffs, key=diffs.get) if diffs else None
    report["d_merge"] = {"tensors": len(diffs), "max_abs_diff": worst and diffs[worst], "worst": worst,
                         "unmatched": odd, "per_tensor": diffs}
    if odd:
        fail(report, "d_merge", f"tensor names/shapes differ: {odd[:6]}")
    if worst and diffs[worst] > a.weight_tol:
        fail(report, "d_merge", f"{worst}: max abs diff {diffs[worst]:.3g} > {a.weight_tol}")
    del base, peft_model
    merged = load_model(a.merged, a, report, "d_merged")
    compare_losses("d_merged_loss", merged, samples, a.ours_merged, a, report)

    report["ok"] = not report["failures"]
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"{'check':<16} {'max |diff|':>12}  detail")
    for k in ("b_base_loss", "c_adapter_loss", "d_merge", "d_merged_loss"):
        r = report.get(k, {})
        print(f"{k:<16} {r.get('max_abs_diff') if r.get('max_abs_diff') is not None else '-':>12}  "
              + (f"hf {r['val_loss_hf']:.6f} ours {r['val_loss_ours']} via {r['path']}" if "path" in r
                 else f"{r.get('tensors')} tensors, worst {r.get('worst')}"))
    print(f"modules: {report['c_modules']['trained']} trained, {report['c_modules']['wrapped']} wrapped by PEFT")
    for f_ in report["failures"]:
        print("FAIL", f_)
    print("OK" if report["ok"] else f"FAILED ({len(report['failures'])})")
    print(json.dumps({"third_party_ok": report["ok"], "failures": report["failures"],
                      **{k: report[k]["max_abs_diff"] for k in ("b_base_loss", "c_adapter_loss", "d_merge", "d_merged_loss")}}))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
