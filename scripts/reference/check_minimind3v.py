"""End-to-end check of the MiniMind-V path: converter + `minivlm forward` against the reference.

    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/reference/check_minimind3v.py [--minivlm build/bin/minivlm]
        [--convert-only]

For each case of tests/goldens/minimind3v/:
 1. runs `python3 scripts/convert_minimind_v.py` into a temporary directory and checks the result: config.json
    has exactly the minivlm schema; model.safetensors holds exactly the W.pth tensors (lm_head.weight left out
    when tied) and the SigLIP folder's vision_model.* tensors (pooling head left out) renamed
    vision_encoder.vision_model.*, bit-identical and in their source dtypes;
 2. checks that the reference (minimind3v_ref.py) still reproduces expected.safetensors;
 3. runs `minivlm forward --model DIR (--chat TEXT | --text RAW) [--image PATH]... --out FILE` for every prompt
    and compares input_ids exactly and the full logits (max |diff| / max |ref| < 1e-4).
It also runs the converter on a few broken inputs and checks that each is refused with a message naming the
problem. Step 3 is skipped with --convert-only (exit status 2 when the binary is missing otherwise).
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
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minimind3v_ref as ref  # noqa: E402

REPO = ref.REPO_ROOT
GOLD = os.path.join(REPO, "tests", "goldens", "minimind3v")
CONVERTER = os.path.join(REPO, "scripts", "convert_minimind_v.py")
CASES = {"dense": "siglip_bilinear", "moe_top1": "siglip_bicubic", "moe_top2": "siglip_bilinear"}
SCHEMA = {
    "": {"model_type", "llm", "vision", "projector", "image_token"},
    "llm": {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "head_dim", "intermediate_size", "rope_theta", "rms_norm_eps", "qk_norm", "tie_word_embeddings",
            "max_position_embeddings", "use_moe", "num_experts", "num_experts_per_tok", "moe_intermediate_size",
            "norm_topk_prob", "router_aux_loss_coef"},
    "vision": {"type", "image_size", "patch_size", "num_channels", "hidden_size", "num_hidden_layers",
               "num_attention_heads", "intermediate_size", "layer_norm_eps", "hidden_act", "image_mean",
               "image_std", "resample"},
    "projector": {"type", "pixel_shuffle", "bias", "layer_norm_eps"},
}
PYTHON = shutil.which("python3") or sys.executable


def convert(weights, vision, config, out, extra=()):
    cmd = [PYTHON, CONVERTER, "--weights", weights, "--vision", vision, "--out", out]
    if config:
        cmd += ["--config", config]
    return subprocess.run(cmd + list(extra), capture_output=True, text=True)


def check_converted(case, sig, model_dir):
    problems = []
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    for section, keys in SCHEMA.items():
        have = set(cfg if section == "" else cfg[section])
        if have != keys:
            problems.append(f"config.json {section or 'top level'}: extra {sorted(have - keys)}, "
                            f"missing {sorted(keys - have)}")
    with open(os.path.join(GOLD, case, "config.json")) as f:
        mcfg = ref.resolve_config(json.load(f))
    llm = cfg["llm"]
    for k in SCHEMA["llm"] - {"qk_norm"}:
        if llm[k] != mcfg[k]:
            problems.append(f"llm.{k} = {llm[k]!r}, MiniMind config gives {mcfg[k]!r}")
    pp = json.load(open(os.path.join(GOLD, sig, "preprocessor_config.json")))
    exp_vis = {"image_mean": list(pp["image_mean"]), "image_std": list(pp["image_std"]),
               "resample": {2: "bilinear", 3: "bicubic"}[pp["resample"]], "image_size": pp["size"]["height"],
               "type": "siglip", "hidden_act": "gelu_pytorch_tanh"}
    for k, v in exp_vis.items():
        if cfg["vision"][k] != v:
            problems.append(f"vision.{k} = {cfg['vision'][k]!r}, expected {v!r}")
    if cfg["image_token"] != "<|image_pad|>" or cfg["model_type"] != "minivlm":
        problems.append("image_token / model_type")

    # tensors: exactly the sources', bit for bit, in the source dtype
    w = torch.load(os.path.join(GOLD, case, "W.pth"), map_location="cpu", weights_only=True)
    sig_t = load_file(os.path.join(GOLD, sig, "model.safetensors"))
    expected = {k: v for k, v in w.items() if not (k == "lm_head.weight" and mcfg["tie_word_embeddings"])}
    if mcfg["tie_word_embeddings"] and not torch.equal(w["lm_head.weight"], w["model.embed_tokens.weight"]):
        problems.append("W.pth: lm_head.weight != model.embed_tokens.weight although tied")
    for k, v in sig_t.items():
        if not k.startswith("vision_model.head."):
            expected["vision_encoder." + k] = v
    got = load_file(os.path.join(model_dir, "model.safetensors"))
    for k in sorted(set(expected) - set(got)):
        problems.append(f"model.safetensors: missing {k}")
    for k in sorted(set(got) - set(expected)):
        problems.append(f"model.safetensors: unexpected {k}")
    for k in sorted(set(got) & set(expected)):
        a, b = got[k], expected[k]
        if a.dtype != b.dtype or a.shape != b.shape or not torch.equal(a, b):
            problems.append(f"model.safetensors: {k} {a.dtype} {list(a.shape)} differs from the source "
                            f"{b.dtype} {list(b.shape)}")
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        with open(os.path.join(model_dir, fn), "rb") as f1, open(os.path.join(ref.TOKENIZER_DIR, fn), "rb") as f2:
            if f1.read() != f2.read():
                problems.append(f"{fn} is not the repository's")
    return problems, len(got)


def converter_refusals(work):
    """Broken inputs; each must fail with a message containing the given text."""
    d = os.path.join(GOLD, "dense")
    sig = os.path.join(GOLD, "siglip_bilinear")
    w = torch.load(os.path.join(d, "W.pth"), map_location="cpu", weights_only=True)
    cfg = json.load(open(os.path.join(d, "config.json")))
    tests = []

    def variant(name, wmod=None, cmod=None):
        p = os.path.join(work, name)
        os.makedirs(p)
        ww = dict(w)
        if wmod:
            wmod(ww)
        torch.save(ww, os.path.join(p, "W.pth"))
        cc = dict(cfg)
        if cmod:
            cmod(cc)
        json.dump(cc, open(os.path.join(p, "config.json"), "w"))
        return os.path.join(p, "W.pth"), os.path.join(p, "config.json")

    def drop(ww):
        del ww["model.layers.1.self_attn.k_norm.weight"]

    def noncontig(ww):
        ww["model.layers.0.mlp.up_proj.weight"] = ww["model.layers.0.mlp.up_proj.weight"].t().contiguous().t()

    def untie(ww):
        ww["lm_head.weight"] = ww["lm_head.weight"].clone() + 1

    def extra(ww):
        ww["model.layers.0.mlp.bogus"] = torch.zeros(3, dtype=torch.float16)

    tests.append(("missing tensor", variant("missing", drop), "missing tensor model.layers.1.self_attn.k_norm.weight"))
    tests.append(("non-contiguous", variant("noncontig", noncontig), "model.layers.0.mlp.up_proj.weight is not contiguous"))
    tests.append(("tied but different", variant("untied", untie), "lm_head.weight differs"))
    tests.append(("unexpected tensor", variant("extra", extra), "unexpected tensor model.layers.0.mlp.bogus"))
    tests.append(("YaRN", variant("yarn", cmod=lambda c: c.update(inference_rope_scaling=True)), "YaRN"))
    tests.append(("image_token_len", variant("itl", cmod=lambda c: c.update(image_token_len=64)), "image_token_len 64"))
    tests.append(("image_hidden_size", variant("ihs", cmod=lambda c: c.update(image_hidden_size=768)),
                  "image_hidden_size 768"))
    tests.append(("image_ids", variant("iid", cmod=lambda c: c.update(image_ids=[34])), "image_ids [34]"))
    tests.append(("hidden_size", variant("hs", cmod=lambda c: c.update(hidden_size=48, head_dim=12)),
                  "has shape [6400, 64], expected [6400, 48]"))
    results = []
    for name, (wp, cp), needle in tests:
        r = convert(wp, sig, cp, os.path.join(work, "out_" + name.replace(" ", "_")))
        ok = r.returncode != 0 and needle in r.stderr
        results.append((name, ok, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "(no message)"))
    # SigLIP preprocessor: resample 0 (nearest) and a non-square size are refused
    for name, mod, needle in (("resample 0", {"resample": 0}, "resample 0"),
                              ("non-square", {"size": {"height": 64, "width": 48}}, "not square")):
        s2 = os.path.join(work, "sig_" + name.replace(" ", "_"))
        shutil.copytree(sig, s2)
        pp = json.load(open(os.path.join(s2, "preprocessor_config.json")))
        pp.update(mod)
        json.dump(pp, open(os.path.join(s2, "preprocessor_config.json"), "w"))
        r = convert(os.path.join(d, "W.pth"), s2, os.path.join(d, "config.json"), os.path.join(work, "o_" + name))
        results.append((name, r.returncode != 0 and needle in r.stderr, r.stderr.strip().splitlines()[-1]))
    # accepted variants: no --config (release sizes: a shape mismatch here, so only the message is checked),
    # SigLIP names without the vision_model. prefix (transformers 5 layout), an existing output needs --force
    s3 = os.path.join(work, "sig_noprefix")
    shutil.copytree(sig, s3)
    t = load_file(os.path.join(s3, "model.safetensors"))
    save_file({k[len("vision_model."):]: v for k, v in t.items()}, os.path.join(s3, "model.safetensors"))
    out = os.path.join(work, "o_noprefix")
    r = convert(os.path.join(d, "W.pth"), s3, os.path.join(d, "config.json"), out)
    ok = r.returncode == 0 and not check_converted("dense", "siglip_bilinear", out)[0]
    results.append(("SigLIP without vision_model. prefix", ok, r.stdout.strip() or r.stderr.strip()))
    r = convert(os.path.join(d, "W.pth"), sig, os.path.join(d, "config.json"), out)
    results.append(("non-empty --out refused", r.returncode != 0 and "--force" in r.stderr, r.stderr.strip()))
    r = convert(os.path.join(d, "W.pth"), sig, os.path.join(d, "config.json"), out, ["--force"])
    results.append(("--force replaces", r.returncode == 0, r.stdout.strip()))
    r = convert(os.path.join(d, "W.pth"), sig, None, os.path.join(work, "o_noconfig"))
    results.append(("no --config: release sizes", r.returncode != 0 and "expected [6400, 768]" in r.stderr,
                    "refused with shape messages (the goldens are not 768-wide)"))
    return results


def run_forward(minivlm, model_dir, prompt, out):
    cmd = [minivlm, "forward", "--model", model_dir]
    text = prompt["text"]
    if prompt["kind"] == "chat":  # --chat puts "<image>\n" before the text once per image itself
        while text.startswith("<image>\n"):
            text = text[len("<image>\n"):]
    cmd += ["--chat" if prompt["kind"] == "chat" else "--text", text]
    for im in prompt["images"]:
        cmd += ["--image", os.path.join(REPO, im)]
    cmd += ["--out", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    with safe_open(out, "pt") as f:
        return f.get_tensor("input_ids"), f.get_tensor("logits")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minivlm", default=os.path.join(REPO, "build", "bin", "minivlm"))
    ap.add_argument("--convert-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    prompts = json.load(open(os.path.join(GOLD, "prompts.json"), encoding="utf-8"))
    have_bin = os.path.exists(args.minivlm) and not args.convert_only
    tok = ref.load_tokenizer()
    work = tempfile.mkdtemp(prefix="check_mm3v_")
    failures, rows = [], []
    try:
        for case, sig in CASES.items():
            out = os.path.join(work, case)
            r = convert(os.path.join(GOLD, case, "W.pth"), os.path.join(GOLD, sig), os.path.join(GOLD, case,
                        "config.json"), out)
            if r.returncode != 0:
                failures.append(f"{case}: conversion failed: {r.stderr.strip()}")
                continue
            print(r.stdout.strip())
            problems, n = check_converted(case, sig, out)
            failures += [f"{case}: {p}" for p in problems]
            print(f"{case}: converted directory {'OK' if not problems else 'WRONG'} ({n} tensors)")

            cfg = ref.resolve_config(json.load(open(os.path.join(GOLD, case, "config.json"))))
            w16 = ref.load_pth(os.path.join(GOLD, case, "W.pth"))
            model = ref.MiniMind3V(cfg, w16, os.path.join(GOLD, sig), torch.float32)
            proc = ref.load_processor(os.path.join(GOLD, sig))
            exp = load_file(os.path.join(GOLD, case, "expected.safetensors"))
            cols = exp["logit_columns"]
            for p in prompts:
                n_ = p["name"]
                ids = ref.render_prompt(tok, p["kind"], p["text"], cfg["image_token_len"], cfg["image_special_token"])
                pv = ref.load_images([os.path.join(REPO, x) for x in p["images"]], proc)
                with torch.no_grad():
                    logits = model(ids, pv)
                same = torch.equal(ids, exp[f"{n_}.input_ids"]) and torch.equal(logits[-1], exp[f"{n_}.logits_last"]) \
                    and torch.equal(logits[:, cols], exp[f"{n_}.logits_cols"]) and \
                    (pv is None or torch.equal(pv, exp[f"{n_}.pixel_values"]))
                if not same:
                    failures.append(f"{case}/{n_}: the reference no longer reproduces expected.safetensors")
                row = [case, n_, len(ids), "ref ok" if same else "REF DIFFERS"]
                if have_bin:
                    cids, clog = run_forward(args.minivlm, out, p, os.path.join(work, f"{case}_{n_}.safetensors"))
                    ids_ok = torch.equal(cids.to(torch.int64), ids)
                    d = ((clog.double() - logits.double()).abs().max() / logits.double().abs().max()).item() \
                        if ids_ok and tuple(clog.shape) == tuple(logits.shape) else float("inf")
                    row += ["ids ok" if ids_ok else "IDS DIFFER", f"{d:.2e}"]
                    if not ids_ok or not d < 1e-4:
                        failures.append(f"{case}/{n_}: minivlm forward: ids {'ok' if ids_ok else 'differ'}, "
                                        f"logits rel diff {d:.2e}")
                rows.append(row)
        print(f"\n{'case':9} {'prompt':6} {'T':>4}  reference" + ("    ids     logits rel diff" if have_bin else ""))
        for r_ in rows:
            print(f"{r_[0]:9} {r_[1]:6} {r_[2]:4d}  {r_[3]:10}" + (f" {r_[4]:10} {r_[5]:>12}" if have_bin else ""))
        print("\nconverter on broken / variant inputs:")
        for name, ok, msg in converter_refusals(work):
            print(f"  {'ok  ' if ok else 'FAIL'} {name}: {msg[:150]}")
            if not ok:
                failures.append(f"converter: {name}: {msg}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit("FAILED:\n  " + "\n  ".join(failures))
    if not have_bin:
        print(f"\nconversion checks passed; minivlm forward not run ({'--convert-only' if args.convert_only else args.minivlm + ' is missing'})")
        sys.exit(0 if args.convert_only else 2)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
