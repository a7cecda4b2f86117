"""Checks `minivlm forward` on the SmolVLM directories in tests/goldens/smolvlm against Hugging Face transformers.

    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/reference/check_smolvlm.py [--minivlm build/bin/minivlm]
    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/reference/check_smolvlm.py --final DIR --like CASE

Default mode, for every case (tied_split, untied_nosplit) and every prompt of prompts.json:
 1. transformers (SmolVLMForConditionalGeneration, float32, eager attention; SmolVLMProcessor with the PIL image
    processor, see make_smolvlm_goldens.load_processor) recomputes ids, pixel values and logits, and they must
    reproduce expected.safetensors (ids exactly, logits within 1e-5 relative);
 2. `minivlm forward --model DIR (--chat TEXT | --text RAW) [--image PATH]... [--video PATH]... --out F` runs;
    its input_ids must equal transformers' exactly and its full logits [T, V] must satisfy
    max |diff| / max |ref| < 1e-4.
--final DIR --like CASE: DIR is a directory written by minivlm's trainer (its final/). transformers must load
it with SmolVLMForConditionalGeneration.from_pretrained with no missing, unexpected or mismatched keys; then
step 2 runs on DIR for the prompts, against transformers' logits of DIR. The processor comes from DIR when it
has processor_config.json, otherwise from tests/goldens/smolvlm/CASE.
Exit status: 0 all passed, 1 a check failed, 2 minivlm is missing (only the transformers checks ran).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_smolvlm_goldens as g  # noqa: E402

REPO = g.REPO
GOLD = os.path.join(REPO, g.GOLD_REL)
CASES = {"tied_split": "tied_split", "untied_nosplit": "untied_nosplit"}
TOL_MINIVLM = 1e-4
TOL_REGEN = 1e-5


def forward_cmd(minivlm, model_dir, prompt, out):
    cmd = [minivlm, "forward", "--model", model_dir, "--chat" if prompt["kind"] == "chat" else "--text",
           prompt["text"]]
    for im in prompt["images"]:
        cmd += ["--image", os.path.join(REPO, im)]
    for v in prompt.get("videos", []):
        cmd += ["--video", os.path.join(REPO, v)]
    return cmd + ["--out", out]


def run_forward(minivlm, model_dir, prompt, out):
    cmd = forward_cmd(minivlm, model_dir, prompt, out)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, None, f"exit {r.returncode}: {r.stderr.strip()[-300:]}"
    with safe_open(out, "pt") as f:
        return f.get_tensor("input_ids"), f.get_tensor("logits"), None


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max()).item()


def reference(model, proc, prompt):
    """transformers' ids [T], real tiles [n,3,S,S] or None, full float32 logits [T, V]."""
    _, enc, _ = g.process(proc, prompt)
    logits = g.forward(model, enc, torch.float32).to(torch.float32)
    tiles = g.real_tiles(enc) if "pixel_values" in enc else None
    return enc["input_ids"][0].to(torch.int64), tiles, logits


def compare_minivlm(minivlm, model_dir, prompt, ids, logits, work, tag):
    out = os.path.join(work, tag + ".safetensors")
    cids, clog, err = run_forward(minivlm, model_dir, prompt, out)
    if err:
        return ["FAILED", "-"], f"minivlm forward {err}"
    ids_ok = torch.equal(cids.to(torch.int64), ids)
    if not ids_ok:
        return ["IDS DIFFER", "-"], f"ids differ (T {len(cids)} vs {len(ids)}; first difference at " \
            f"{first_diff(cids.tolist(), ids.tolist())})"
    if tuple(clog.shape) != tuple(logits.shape):
        return ["ids ok", "SHAPE"], f"logits shape {tuple(clog.shape)} vs {tuple(logits.shape)}"
    d = rel(clog, logits)
    return ["ids ok", f"{d:.2e}"], (None if d < TOL_MINIVLM else f"logits rel diff {d:.2e} >= {TOL_MINIVLM:g}")


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def check_cases(args, prompts, have_bin, work):
    failures, rows = [], []
    for case, gold_case in CASES.items():
        if args.cases and case not in args.cases:
            continue
        cdir = os.path.join(GOLD, case)
        model, proc = g.load_dir(cdir, torch.float32)
        exp = load_file(os.path.join(GOLD, gold_case, "expected.safetensors"))
        cols = exp["logit_columns"]
        for p in prompts:
            n = p["name"]
            ids, tiles, logits = reference(model, proc, p)
            problems = []
            if not torch.equal(ids, exp[f"{n}.input_ids"]):
                problems.append("ids")
            # (pixel values: tests/goldens/image/smolvlm* hold the processor's tiles)
            dl = max(rel(logits[-1], exp[f"{n}.logits_last"]), rel(logits[:, cols], exp[f"{n}.logits_cols"])) \
                if not problems else float("inf")
            if not dl < TOL_REGEN:
                problems.append(f"logits ({dl:.1e})")
            if problems:
                failures.append(f"{case}/{n}: transformers no longer reproduces expected.safetensors: {problems}")
            row = [case, n, len(ids), "ok" if not problems else "DIFFERS", f"{dl:.1e}"]
            if have_bin:
                cells, err = compare_minivlm(args.minivlm, cdir, p, ids, logits, work, f"{case}_{n}")
                row += cells
                if err:
                    failures.append(f"{case}/{n}: {err}")
            rows.append(row)
    head = f"{'case':15} {'prompt':16} {'T':>4}  {'goldens':8} {'rel':>8}"
    if have_bin:
        head += f"  {'minivlm ids':12} {'logits rel diff':>15}"
    print(head)
    for r in rows:
        line = f"{r[0]:15} {r[1]:16} {r[2]:4d}  {r[3]:8} {r[4]:>8}"
        if have_bin:
            line += f"  {r[5]:12} {r[6]:>15}"
        print(line)
    return failures


def check_final(args, prompts, have_bin, work):
    from transformers import SmolVLMForConditionalGeneration
    failures = []
    model, info = SmolVLMForConditionalGeneration.from_pretrained(
        args.final, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    model.eval()
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        v = info.get(k) or []
        print(f"{k}: {len(v)}" + (f" {sorted(map(str, v))[:20]}" if v else ""))
        if v:
            failures.append(f"from_pretrained({args.final}): {k} {sorted(map(str, v))[:20]}")
    like = os.path.join(GOLD, args.like)
    ref_cfg = json.load(open(os.path.join(like, "config.json")))
    cfg = json.load(open(os.path.join(args.final, "config.json")))
    for k in ("model_type", "scale_factor", "image_token_id", "tie_word_embeddings"):
        if cfg.get(k) != ref_cfg.get(k):
            print(f"note: config.json {k} = {cfg.get(k)!r}, {args.like} has {ref_cfg.get(k)!r}")
    has_proc = os.path.exists(os.path.join(args.final, "processor_config.json"))
    proc = g.load_processor(args.final if has_proc else like)
    print(f"processor from {'DIR' if has_proc else like}")
    rows = []
    for p in prompts:
        ids, _, logits = reference(model, proc, p)
        row = [p["name"], len(ids)]
        if have_bin:
            cells, err = compare_minivlm(args.minivlm, args.final, p, ids, logits, work, "final_" + p["name"])
            row += cells
            if err:
                failures.append(f"final/{p['name']}: {err}")
        rows.append(row)
    print(f"\n{'prompt':16} {'T':>4}" + (f"  {'minivlm ids':12} {'logits rel diff':>15}" if have_bin else ""))
    for r in rows:
        print(f"{r[0]:16} {r[1]:4d}" + (f"  {r[2]:12} {r[3]:>15}" if have_bin else ""))
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minivlm", default=os.path.join(REPO, "build", "bin", "minivlm"))
    ap.add_argument("--cases", nargs="*", help="subset of " + ", ".join(CASES))
    ap.add_argument("--prompts", nargs="*", help="subset of the prompt names")
    ap.add_argument("--final", help="a model directory written by minivlm's trainer")
    ap.add_argument("--like", default="tied_split", help="the case whose processor DIR falls back to")
    args = ap.parse_args()
    torch.set_num_threads(1)
    prompts = json.load(open(os.path.join(GOLD, "prompts.json"), encoding="utf-8"))
    if args.prompts:
        prompts = [p for p in prompts if p["name"] in args.prompts]
    have_bin = os.path.exists(args.minivlm)
    work = tempfile.mkdtemp(prefix="check_smolvlm_")
    try:
        failures = check_final(args, prompts, have_bin, work) if args.final else \
            check_cases(args, prompts, have_bin, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit("FAILED:\n  " + "\n  ".join(failures))
    if not have_bin:
        print(f"\ntransformers checks passed; minivlm forward not run ({args.minivlm} is missing)")
        sys.exit(2)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
