"""Writes tests/goldens/minimind3v/: tiny random MiniMind-V (minimind-3v layout) releases and the logits our
reference (minimind3v_ref.py) gives on fixed prompts.

    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/reference/make_minimind3v_goldens.py [--out DIR]

Before writing anything it checks, for every case and prompt, the reference against MiniMind-V's own
MiniMindVLM (loaded from the upstream snapshot into a temporary directory, see upstream_minimind_v.py):
float32 logits (max |diff| / max |ref| < 1e-5), the MoE aux loss of a training-mode forward, and the
reference in float32 against itself in float64 (< 1e-5). It stops with an error when a check fails.
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minimind3v_ref as ref  # noqa: E402
import upstream_minimind_v  # noqa: E402

REPO = ref.REPO_ROOT
IMG = "tests/fixtures/images/"
PROMPTS = [
    {"name": "p0", "kind": "chat", "text": "<image>\nWhat is in this picture?",
     "images": [IMG + "image-01-golden-dog-balloons.jpg"]},
    {"name": "p1", "kind": "chat", "text": "<image>\n<image>\n这两张图有什么不同？",
     "images": [IMG + "image-02-rainbow-umbrella-street.jpg", IMG + "image-03-cherry-blossom-bike.jpg"]},
    {"name": "p2", "kind": "chat", "text": "你好，你是谁？", "images": []},
    {"name": "p3", "kind": "raw", "text": "A photo: <image> It shows a yellow car.",
     "images": [IMG + "image-04-yellow-car.jpg"]},
    {"name": "p4", "kind": "raw", "text": "The quick brown fox jumps over the lazy dog.", "images": []},
]

SIGLIPS = {
    # name: SiglipVisionConfig kwargs, processor kwargs, stored dtype
    "siglip_bilinear": (dict(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=64),
                        dict(size={"height": 64, "width": 64}, resample=2, image_mean=[0.5, 0.5, 0.5],
                             image_std=[0.5, 0.5, 0.5]), torch.float16),
    "siglip_bicubic": (dict(image_size=48, patch_size=12, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=48),
                       dict(size={"height": 48, "width": 48}, resample=3,
                            image_mean=[0.48145466, 0.4578275, 0.40821073],
                            image_std=[0.26862954, 0.26130258, 0.27577711]), torch.float32),
}

LLM_COMMON = dict(vocab_size=6400, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  image_hidden_size=32, image_token_len=16)
CASES = {
    # name: siglip, VLMConfig kwargs, tied lm_head sharing the embedding's storage in W.pth
    "dense": ("siglip_bilinear", dict(hidden_size=64, **LLM_COMMON), True),
    "moe_top1": ("siglip_bicubic", dict(hidden_size=32, use_moe=True, num_experts=4, num_experts_per_tok=1,
                                        moe_intermediate_size=96, **LLM_COMMON), True),
    "moe_top2": ("siglip_bilinear", dict(hidden_size=32, use_moe=True, num_experts=4, num_experts_per_tok=2,
                                         moe_intermediate_size=96, norm_topk_prob=True, **LLM_COMMON), False),
}
# transformers bookkeeping left out of the config.json we write (what VLMConfig.to_dict() adds)
BOOKKEEPING = {"transformers_version", "architectures", "output_hidden_states", "return_dict", "dtype",
               "chunk_size_feed_forward", "is_encoder_decoder", "id2label", "label2id", "problem_type",
               "_name_or_path", "output_attentions"}
N_COLUMNS = 512


def gen(seed):
    return torch.Generator().manual_seed(seed)


def make_siglip(out_dir, name, seed):
    from transformers import SiglipImageProcessorPil, SiglipVisionConfig, SiglipVisionModel
    vkw, pkw, dtype = SIGLIPS[name]
    torch.manual_seed(seed)
    cfg = SiglipVisionConfig(**vkw)
    model = SiglipVisionModel(cfg).eval()
    g = gen(seed)
    with torch.no_grad():
        for pname, p in sorted(model.named_parameters()):
            if "norm" in pname and pname.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif pname.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "position_embedding" in pname or "probe" in pname:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:  # linears, conv, attention in-proj of the pooling head
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
    model = model.to(dtype)
    d = os.path.join(out_dir, name)
    model.save_pretrained(d, safe_serialization=True)
    SiglipImageProcessorPil(**pkw).save_pretrained(d)
    # transformers 5 writes the names without the vision_model. prefix; published SigLIP folders (such as
    # MiniMind-V's siglip2-base-p32-256-ve) have it, so the golden folders do too
    st = os.path.join(d, "model.safetensors")
    saved = load_file(st)
    assert not any(k.startswith("vision_model.") for k in saved)
    save_file({"vision_model." + k: v for k, v in saved.items()}, st, metadata={"format": "pt"})
    reloaded = ref.load_vision(d, torch.float32).state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(reloaded[k], v.float()), k
    return d


def random_state_dict(keys_shapes, seed):
    """Values for every upstream state-dict name (float32)."""
    g = gen(seed)
    sd = {}
    for k, shape in keys_shapes:
        if k == "lm_head.weight":
            continue
        if k == "model.embed_tokens.weight":
            v = 0.2 * torch.randn(shape, generator=g)
        elif k.endswith("norm.weight") or k.endswith("layernorm.weight") or k == "vision_proj.mlp.0.weight":
            v = 1 + 0.1 * torch.randn(shape, generator=g)
        elif k.endswith("bias"):
            v = 0.1 * torch.randn(shape, generator=g)
        elif k.endswith("mlp.gate.weight"):  # router: large enough that tokens spread over the experts
            v = 3.0 * torch.randn(shape, generator=g) / math.sqrt(shape[1])
        else:
            v = torch.randn(shape, generator=g) / math.sqrt(shape[1])
        sd[k] = v
    return sd


def build_upstream(vlm, kwargs, siglip_dir):
    torch.manual_seed(0)
    model = vlm.MiniMindVLM(vlm.VLMConfig(**kwargs), vision_model_path=siglip_dir)
    assert model.vision_encoder is not None, "upstream could not load the SigLIP folder"
    return model.float().eval()


def upstream_logits(model, ids, pv):
    # the dict form the dataset's collate gives ({'pixel_values': [B, n, 3, S, S]}); upstream's plain-tensor
    # branch hands a tensor to get_image_embeddings, which unpacks it with ** and fails
    pv5 = None if pv is None else {"pixel_values": pv[None]}
    out = model(input_ids=ids[None], pixel_values=pv5)
    return out.logits[0], out.aux_loss


def rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "goldens", "minimind3v"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    mm, vlm, commit = upstream_minimind_v.load()
    print(f"upstream MiniMind-V {commit}")

    work = tempfile.mkdtemp(prefix="mm3v_goldens_")
    out_tmp = os.path.join(work, "minimind3v")
    os.makedirs(out_tmp)
    sig_dirs = {n: make_siglip(out_tmp, n, seed) for seed, n in enumerate(SIGLIPS, start=100)}
    tok = ref.load_tokenizer()
    cols = torch.randperm(6400, generator=gen(7))[:N_COLUMNS].sort().values
    with open(os.path.join(out_tmp, "prompts.json"), "w", encoding="utf-8") as f:
        json.dump(PROMPTS, f, ensure_ascii=False, indent=1)
        f.write("\n")

    failures, report, experts_seen = [], [], {}
    for ci, (case, (sig, kwargs, shared)) in enumerate(CASES.items()):
        sig_dir = sig_dirs[sig]
        up = build_upstream(vlm, kwargs, sig_dir)
        names = [(k, tuple(v.shape)) for k, v in up.state_dict().items() if not k.startswith("vision_encoder.")]
        sd32 = random_state_dict(names, 1000 + ci)
        sd32["lm_head.weight"] = sd32["model.embed_tokens.weight"]
        up.load_state_dict(sd32, strict=False)
        missing = [k for k, _ in names if k not in sd32]
        assert not missing, missing
        # save exactly as MiniMind-V saves a release (trainer_utils.vlm_checkpoint)
        if shared:  # a half-precision model: .half() is a no-op and the tied pair keeps one storage
            up.half()
        state_dict = up.state_dict()
        clean_state_dict = {k: v for k, v in state_dict.items() if not k.startswith("vision_encoder.")}
        cdir = os.path.join(out_tmp, case)
        os.makedirs(cdir)
        torch.save({k: v.half().cpu() for k, v in clean_state_dict.items()}, os.path.join(cdir, "W.pth"))
        cfg_dict = {k: v for k, v in up.config.to_dict().items() if k not in BOOKKEEPING}
        with open(os.path.join(cdir, "config.json"), "w") as f:
            json.dump(cfg_dict, f, indent=2, sort_keys=True)
            f.write("\n")

        # reference and upstream both from the fp16 values as stored
        w16 = ref.load_pth(os.path.join(cdir, "W.pth"))
        with open(os.path.join(cdir, "config.json")) as f:
            cfg = ref.resolve_config(json.load(f))
        up = build_upstream(vlm, kwargs, sig_dir)
        res = up.load_state_dict({k: v.float() for k, v in w16.items()}, strict=False)
        assert not res.unexpected_keys and all(k.startswith("vision_encoder.") for k in res.missing_keys), res
        m32 = ref.MiniMind3V(cfg, w16, sig_dir, torch.float32)
        m64 = ref.MiniMind3V(cfg, w16, sig_dir, torch.float64)
        proc = ref.load_processor(sig_dir)
        tensors = {"logit_columns": cols.clone()}
        for p in PROMPTS:
            ids = ref.render_prompt(tok, p["kind"], p["text"], cfg["image_token_len"], cfg["image_special_token"])
            n_runs = sum(1 for i in range(len(ids)) if ids[i] == 12 and (i == 0 or ids[i - 1] != 12))
            assert n_runs == len(p["images"]), (p["name"], n_runs)
            pv = ref.load_images([os.path.join(REPO, x) for x in p["images"]], proc)
            with torch.no_grad():
                l32, aux32 = m32(ids, pv, return_aux=True)
                l64, aux64 = m64(ids, pv, return_aux=True)
                lup, _ = upstream_logits(up, ids, pv)
                up.train()
                lup_train, aux_up = upstream_logits(up, ids, pv)
                up.eval()
                # the images must matter: other pixels (the negated image) move the logits visibly
                d_img = rel(m32(ids, -pv), l32) if pv is not None else float("nan")
            if cfg["use_moe"]:
                seen = experts_seen.setdefault(case, set())
                for r in m32.last_routing:
                    seen.update(r.flatten().tolist())
            d_up, d_64 = rel(l32, lup), rel(l32, l64)
            d_train = rel(l32, lup_train)
            d_aux = abs(aux32.item() - aux_up.item()) / max(abs(aux_up.item()), 1e-30) if cfg["use_moe"] else 0.0
            d_aux64 = abs(aux32.item() - aux64.item()) / max(abs(aux64.item()), 1e-30) if cfg["use_moe"] else 0.0
            report.append((case, p["name"], len(ids), d_up, d_train, d_64, d_aux, d_aux64,
                           aux64.item() if cfg["use_moe"] else float("nan"), d_img))
            if pv is not None and d_img < 1e-2:
                failures.append(f"{case}/{p['name']}: other pixels move the logits by only {d_img:.2e}")
            if d_up > 1e-5 or d_train > 1e-5 or d_64 > 1e-5 or d_aux > 1e-5 or d_aux64 > 1e-5:
                failures.append(f"{case}/{p['name']}: ref f32 vs upstream {d_up:.2e}, vs upstream train "
                                f"{d_train:.2e}, vs ref f64 {d_64:.2e}, aux {d_aux:.2e}/{d_aux64:.2e}")
            n = p["name"]
            tensors[f"{n}.input_ids"] = ids.clone()
            if pv is not None:
                tensors[f"{n}.pixel_values"] = pv.contiguous()
            tensors[f"{n}.logits_last"] = l32[-1].contiguous()
            tensors[f"{n}.logits_cols"] = l32[:, cols].contiguous()
        ref.save_safetensors(os.path.join(cdir, "expected.safetensors"), tensors,
                             {"case": case, "image_token_len": str(cfg["image_token_len"])})

    print(f"{'case':9} {'prompt':6} {'T':>4} {'vs upstream':>12} {'vs up train':>12} {'f32 vs f64':>11} "
          f"{'aux vs up':>10} {'aux f32/64':>10} {'aux':>10} {'image effect':>12}")
    for r in report:
        print(f"{r[0]:9} {r[1]:6} {r[2]:4d} {r[3]:12.2e} {r[4]:12.2e} {r[5]:11.2e} {r[6]:10.2e} {r[7]:10.2e} "
              f"{r[8]:10.3e} {r[9]:12.2e}")
    for case, seen in experts_seen.items():
        print(f"{case}: experts used {sorted(seen)}")
        if len(seen) != CASES[case][1]["num_experts"]:
            failures.append(f"{case}: experts {sorted(seen)} used; every expert must get tokens")
    if failures:
        shutil.rmtree(work)
        sys.exit("checks failed, nothing written:\n  " + "\n  ".join(failures))
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    shutil.copytree(out_tmp, args.out)
    shutil.rmtree(work)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {args.out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
