"""Independent per-sample evaluation losses (SPEC §2, §3, §4.1, §6 `eval`) on top of model_ref.

    /work/venv/bin/python scripts/reference/eval_ref.py --model DIR --data FILE.jsonl --images DIR \
        [--out DIR] [--dtype float64|float32] [--max-seq-len N]

DIR holds config.json, model.safetensors and tokenizer.json. Prints one JSON line per evaluated
sample, {"index", "loss", "tokens"}, then the totals; with --out also writes
OUT/predictions.jsonl and OUT/metrics.json in the layout of `eval`. `index` is the 0-based position
of the record among the non-blank lines of the JSONL file; `loss` is the mean cross-entropy over
the sample's supervised tokens; the totals' `loss` is the token-weighted mean over all samples.
A bad sample (SPEC §4.3) is skipped with a warning on stderr and counted in `skipped`.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import safetensors.torch
import torch
from PIL import Image
from tokenizers import Tokenizer

from model_ref import check_weights, masked_loss, resolve_config, tokens_per_image, vlm_logits


class DataError(Exception):
    """A sample that SPEC §4.3 says to skip."""


def load_model(model_dir, dtype):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = resolve_config(json.load(f))
    weights = safetensors.torch.load_file(os.path.join(model_dir, "model.safetensors"))
    weights = {n: t.to(dtype) for n, t in check_weights(weights, cfg).items()}
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    image_token_id = tokenizer.token_to_id(cfg["image_token"])
    if image_token_id is None:
        raise ValueError(f"tokenizer has no token {cfg['image_token']!r}")
    return cfg, weights, tokenizer, image_token_id


# ---------------------------------------------------------------------------------------------
# SPEC §2: CLIPImageProcessor via Pillow


def load_rgb(path):
    """First frame, RGB; transparency is composited over white."""
    with Image.open(path) as im:
        im.seek(0)
        im.load()
        if "A" in im.getbands() or im.info.get("transparency") is not None:
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return im.convert("RGB")


def preprocess_image(path, vision_cfg):
    """Shortest edge -> image_size (BICUBIC), center crop, /255, (x - mean) / std -> [3, s, s] float32."""
    s = vision_cfg["image_size"]
    im = load_rgb(path)
    w, h = im.size
    if w <= h:
        size = (s, int(s * h / w))
    else:
        size = (int(s * w / h), s)
    if size != (w, h):
        im = im.resize(size, Image.BICUBIC)
    left, top = (size[0] - s) // 2, (size[1] - s) // 2
    im = im.crop((left, top, left + s, top + s))
    x = np.asarray(im, dtype=np.float32) * np.float32(1 / 255)
    mean = np.asarray(vision_cfg["image_mean"], dtype=np.float32)
    std = np.asarray(vision_cfg["image_std"], dtype=np.float32)
    return torch.from_numpy(((x - mean) / std).transpose(2, 0, 1).copy())


# ---------------------------------------------------------------------------------------------
# SPEC §3 and §4.1: records, chat template, labels


def image_list(record):
    value = record.get("image")
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return [p.strip() for p in value]
    raise DataError(f"'image' must be a string or a list of strings, got {type(value).__name__}")


def render_chat(messages, num_images, image_text):
    """ChatML string of SPEC §3; `<image>` in user turns becomes image_text (N image tokens)."""
    if not isinstance(messages, list) or not messages:
        raise DataError("'conversations' must be a non-empty list")
    turns = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise DataError("every message needs a string 'content'")
        if m.get("role") not in ("system", "user", "assistant"):
            raise DataError(f"unknown role {m.get('role')!r}; valid: system, user, assistant")
        turns.append([m["role"], m["content"]])
    if num_images and not any("<image>" in content for _, content in turns):
        first_user = next((t for t in turns if t[0] == "user"), None)
        if first_user is None:
            raise DataError("images but no user message to put them in")
        first_user[1] = "<image>\n" * num_images + first_user[1]
    text = ""
    for role, content in turns:
        if role == "user":
            content = content.replace("<image>", image_text)
        text += f"<|im_start|>{role}\n{content}<|im_end|>\n"
    return text


def find(ids, pattern, start):
    for t in range(start, len(ids) - len(pattern) + 1):
        if ids[t : t + len(pattern)] == pattern:
            return t
    return -1


def label_mask(ids, tokenizer):
    """1 for every token after each `<|im_start|>assistant\\n` up to and including `<|im_end|>\\n`."""
    begin = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False).ids
    end = tokenizer.encode("<|im_end|>\n", add_special_tokens=False).ids
    mask = [0] * len(ids)
    t = find(ids, begin, 0)
    while t >= 0:
        first = t + len(begin)
        stop = find(ids, end, first)
        last = len(ids) if stop < 0 else stop + len(end)
        mask[first:last] = [1] * (last - first)
        t = find(ids, begin, last)
    return mask


def encode_sample(record, tokenizer, cfg, image_token, images_dir, max_seq_len):
    """-> ids [1, T], mask [1, T], pixel_values [n, 3, s, s]."""
    paths = image_list(record)
    text = render_chat(record.get("conversations"), len(paths), image_token * tokens_per_image(cfg))
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    mask = label_mask(ids, tokenizer)
    if max_seq_len and len(ids) > max_seq_len:
        ids, mask = ids[:max_seq_len], mask[:max_seq_len]
    if sum(mask[1:]) == 0:
        raise DataError("no supervised token")
    pixels = []
    for p in paths:
        full = os.path.join(images_dir, p)
        try:
            pixels.append(preprocess_image(full, cfg["vision"]))
        except (OSError, ValueError) as e:
            raise DataError(f"image {full}: {e}") from e
    S = cfg["vision"]["image_size"]
    pixel_values = torch.stack(pixels) if pixels else torch.zeros(0, cfg["vision"]["num_channels"], S, S)
    return torch.tensor([ids]), torch.tensor([mask]), pixel_values


def sample_loss(weights, cfg, image_token_id, ids, mask, pixel_values):
    """(mean loss over supervised tokens, their count); a bad image run is a DataError."""
    per_sample = torch.tensor([pixel_values.shape[0]])
    with torch.no_grad():
        try:
            logits = vlm_logits(weights, cfg, ids, pixel_values, per_sample, image_token_id)
        except ValueError as e:
            raise DataError(str(e)) from e
        loss, _, counts = masked_loss(logits, ids, mask)
    return loss.item(), int(counts[0])


def evaluate(model_dir, data_path, images_dir, dtype=torch.float64, max_seq_len=0, log=sys.stderr):
    """-> (list of {"index", "loss", "tokens"}, metrics dict)."""
    cfg, weights, tokenizer, image_token_id = load_model(model_dir, dtype)
    results, skipped, index = [], 0, 0
    with open(data_path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"malformed JSON: {e}") from e
                if not isinstance(record, dict):
                    raise DataError("a record must be a JSON object")
                ids, mask, pixels = encode_sample(record, tokenizer, cfg, cfg["image_token"], images_dir, max_seq_len)
                loss, tokens = sample_loss(weights, cfg, image_token_id, ids, mask, pixels.to(dtype))
                results.append({"index": index, "loss": loss, "tokens": tokens})
            except DataError as e:
                skipped += 1
                print(f"warning: {data_path}:{line_no}: skipped: {e}", file=log)
            index += 1
    tokens = sum(r["tokens"] for r in results)
    loss = sum(r["loss"] * r["tokens"] for r in results) / tokens if tokens else float("nan")
    metrics = {"samples": len(results), "skipped": skipped, "tokens": tokens, "loss": loss, "ppl": math.exp(loss)}
    return results, metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--out")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--max-seq-len", type=int, default=0, help="truncate samples to this many tokens (0: no limit)")
    args = parser.parse_args()
    results, metrics = evaluate(args.model, args.data, args.images, getattr(torch, args.dtype), args.max_seq_len)
    for r in results:
        print(json.dumps(r))
    print(json.dumps(metrics))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "predictions.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in results)
        with open(os.path.join(args.out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
