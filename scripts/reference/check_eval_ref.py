"""Checks eval_ref end to end on a random model with the MiniMind tokenizer and the real photos.

    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/reference/check_eval_ref.py [--keep DIR]

- preprocessing equals transformers' CLIPImageProcessorPil (square, landscape, portrait, RGBA,
  grayscale and upscaled images);
- eval_check.jsonl: 4 samples evaluated (indices 0-3), 4 skipped (missing image, malformed JSON,
  unknown role, two images in one run), the blank line ignored;
- the supervised tokens decode to exactly each assistant reply + "<|im_end|>\\n";
- each sample's loss equals the one from one right-padded batch of all samples (model_ref);
- float32 evaluation agrees with float64 to 1e-5 relative;
- the command line writes the same predictions.jsonl and metrics.json.
With --keep DIR the random model directory is written to DIR and kept.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import safetensors.torch
import torch
import transformers
from PIL import Image

import eval_ref
from model_ref import masked_loss, random_weights, resolve_config, tokens_per_image, vlm_logits

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TOKENIZER = os.path.join(ROOT, "data", "tokenizer", "tokenizer.json")
IMAGES = os.path.join(ROOT, "tests", "fixtures", "images")
DATA = os.path.join(HERE, "eval_check.jsonl")

CONFIG = {
    "model_type": "minivlm",
    "llm": {"vocab_size": 6400, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "qk_norm": True, "rope_theta": 1000000.0},
    "vision": {"image_size": 64, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 2,
               "num_attention_heads": 2, "intermediate_size": 128},
    "projector": {"pixel_shuffle": 2, "bias": False},
    "image_token": "<|image_pad|>",
}


def write_random_model(out_dir, seed):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    weights = random_weights(resolve_config(CONFIG), seed)
    safetensors.torch.save_file(weights, os.path.join(out_dir, "model.safetensors"))
    shutil.copy(TOKENIZER, os.path.join(out_dir, "tokenizer.json"))


def derived_images(tmp):
    """Shapes and modes the photos lack: landscape, portrait, RGBA, grayscale, smaller than s."""
    photo = Image.open(os.path.join(IMAGES, "image-04-yellow-car.jpg")).convert("RGB")
    rgba = photo.crop((0, 0, 500, 333)).convert("RGBA")
    alpha = Image.linear_gradient("L").resize(rgba.size)
    rgba.putalpha(alpha)
    images = {
        "landscape.png": photo.crop((10, 40, 640, 437)),
        "portrait.png": photo.crop((101, 0, 400, 640)),
        "rgba.png": rgba,
        "gray.png": photo.convert("L").crop((0, 0, 311, 203)),
        "small.png": photo.resize((45, 30), Image.BILINEAR),
    }
    paths = []
    for name, im in images.items():
        path = os.path.join(tmp, name)
        im.save(path)
        paths.append(path)
    return paths


def check_preprocessing(vision_cfg, tmp):
    s = vision_cfg["image_size"]
    hf = transformers.CLIPImageProcessorPil(
        size={"shortest_edge": s},
        crop_size={"height": s, "width": s},
        image_mean=vision_cfg["image_mean"],
        image_std=vision_cfg["image_std"],
    )
    paths = [os.path.join(IMAGES, f) for f in sorted(os.listdir(IMAGES))] + derived_images(tmp)
    worst = 0.0
    for path in paths:
        with open(path, "rb") as f:
            theirs = hf(Image.open(io.BytesIO(f.read())), return_tensors="pt")["pixel_values"][0]
        ours = eval_ref.preprocess_image(path, vision_cfg)
        diff = (theirs - ours).abs().max().item()
        if not diff < 1e-5:
            raise AssertionError(f"preprocessing of {path} differs from CLIPImageProcessorPil by {diff}")
        worst = max(worst, diff)
    return len(paths), worst


def good_records():
    with open(DATA, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    return [json.loads(line) for line in lines[:4]]


def check_labels(cfg, tokenizer, records):
    N = tokens_per_image(cfg)
    image_id = tokenizer.token_to_id(cfg["image_token"])
    encoded = []
    for record in records:
        ids, mask, pixels = eval_ref.encode_sample(record, tokenizer, cfg, cfg["image_token"], IMAGES, 0)
        supervised = [t for t, m in zip(ids[0].tolist(), mask[0].tolist()) if m]
        expected = "".join(m["content"] + "<|im_end|>\n" for m in record["conversations"] if m["role"] == "assistant")
        got = tokenizer.decode(supervised, skip_special_tokens=False)
        if got != expected:
            raise AssertionError(f"supervised tokens decode to {got!r}, expected {expected!r}")
        if int((ids == image_id).sum()) != N * pixels.shape[0]:
            raise AssertionError("image token count is not N per image")
        encoded.append((ids[0], mask[0], pixels))
    return encoded


def batched_losses(weights, cfg, image_token_id, encoded):
    """Per-sample (mean loss, tokens) from one right-padded batch."""
    T = max(len(ids) for ids, _, _ in encoded)
    ids = torch.zeros(len(encoded), T, dtype=torch.int64)
    mask = torch.zeros(len(encoded), T, dtype=torch.int64)
    for b, (row_ids, row_mask, _) in enumerate(encoded):
        ids[b, : len(row_ids)] = row_ids
        mask[b, : len(row_mask)] = row_mask
    pixels = torch.cat([p for _, _, p in encoded]).double()
    per_sample = torch.tensor([p.shape[0] for _, _, p in encoded])
    with torch.no_grad():
        logits = vlm_logits(weights, cfg, ids, pixels, per_sample, image_token_id)
        _, sums, counts = masked_loss(logits, ids, mask)
    return [(s.item() / c.item(), int(c)) for s, c in zip(sums, counts)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", help="write the random model here and keep it")
    args = parser.parse_args()
    transformers.utils.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.keep or os.path.join(tmp, "model")
        write_random_model(model_dir, seed=7)
        cfg, weights, tokenizer, image_token_id = eval_ref.load_model(model_dir, torch.float64)

        count, worst = check_preprocessing(cfg["vision"], tmp)
        print(f"preprocessing: {count} images match CLIPImageProcessorPil, max abs diff {worst:.2e}")

        warnings = io.StringIO()
        results, metrics = eval_ref.evaluate(model_dir, DATA, IMAGES, torch.float64, log=warnings)
        print(warnings.getvalue(), end="")
        if [r["index"] for r in results] != [0, 1, 2, 3] or metrics["skipped"] != 4:
            raise AssertionError(f"expected samples 0-3 evaluated and 4 skipped, got {results} {metrics}")
        for reason in ("no-such-image.jpg", "malformed JSON", "unknown role", "1 image-token runs but 2 images"):
            if reason not in warnings.getvalue():
                raise AssertionError(f"no warning mentions {reason!r}")

        encoded = check_labels(cfg, tokenizer, good_records())
        print("labels: supervised tokens decode to the assistant replies + <|im_end|>\\n")
        batched = batched_losses(weights, cfg, image_token_id, encoded)
        for r, (loss, tokens) in zip(results, batched):
            if tokens != r["tokens"] or not abs(loss - r["loss"]) <= 1e-12 * loss:
                raise AssertionError(f"sample {r['index']}: {r} alone, ({loss}, {tokens}) in a padded batch")
        print("batched: per-sample losses equal one right-padded batch (1e-12)")

        results32, _ = eval_ref.evaluate(model_dir, DATA, IMAGES, torch.float32, log=io.StringIO())
        rel32 = max(abs(a["loss"] - b["loss"]) / b["loss"] for a, b in zip(results32, results))
        if not rel32 < 1e-5:
            raise AssertionError(f"float32 evaluation differs from float64 by {rel32} relative")
        print(f"float32 vs float64: max relative loss difference {rel32:.2e}")

        out = os.path.join(tmp, "eval")
        cli = [sys.executable, os.path.join(HERE, "eval_ref.py"), "--model", model_dir, "--data", DATA,
               "--images", IMAGES, "--out", out]
        subprocess.run(cli, check=True, capture_output=True)
        with open(os.path.join(out, "predictions.jsonl")) as f:
            written = [json.loads(line) for line in f]
        with open(os.path.join(out, "metrics.json")) as f:
            written_metrics = json.load(f)
        if written != results or written_metrics != metrics:
            raise AssertionError("eval_ref.py --out wrote different results")
        for r in results:
            print(json.dumps(r))
        print(json.dumps(metrics))


if __name__ == "__main__":
    main()
