"""Writes the model goldens tests/goldens/model/<case>.{safetensors,json} (format: README.md).

For each tiny case: random float32 weights and inputs, then logits, loss and the gradient of every
trainable tensor computed by model_ref in float64. Before anything is written, every case must pass:
the vision tower, the pixel shuffle and the LLM against Hugging Face transformers, the loss against
F.cross_entropy, the gradient against a central finite difference, a float32 run against the
float64 goldens (so the goldens are well-conditioned at the tests' tolerances), the image
features changing the loss, and the merge rejecting bad image runs.

    /work/venv/bin/python scripts/reference/make_model_goldens.py [--out tests/goldens/model]
"""

import argparse
import json
import math
import os
import sys

import safetensors.torch
import torch
import torch.nn.functional as F
import transformers

import hf_parity
import model_ref
from model_ref import (
    masked_loss,
    merge_image_rows,
    random_weights,
    resolve_config,
    tokens_per_image,
    trainable_names,
    vlm_logits,
)

# Token ids of the synthetic conversations (vocabularies are 64-128 tokens).
PAD, IM_START, IM_END, NEWLINE = 0, 1, 2, 3
ROLE_IDS = {"user": 4, "assistant": 5, "system": 6}
IMAGE_TOKEN_ID = 12
FIRST_TEXT_ID = 13

VISION_SMALL = {"num_hidden_layers": 2, "num_attention_heads": 2}

CASES = [
    {
        "name": "gqa_r2_tied",
        "description": "GQA 4/2, qk_norm off, tied embeddings, default head_dim and intermediate_size, "
        "pixel shuffle r=2 without projector bias; right-padded batch of 3 samples of different "
        "lengths, one image each, two assistant turns in the last sample.",
        "config": {
            "llm": {"vocab_size": 96, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
                    "qk_norm": False, "tie_word_embeddings": True},
            "vision": {"image_size": 32, "patch_size": 8, "hidden_size": 24, "intermediate_size": 48,
                       **VISION_SMALL},
            "projector": {"pixel_shuffle": 2, "bias": False},
        },
        "samples": [
            [("user", [3, "image", 2]), ("assistant", [5])],
            [("user", ["image", 1]), ("assistant", [2])],
            [("system", [2]), ("user", [1, "image", 3]), ("assistant", [4]), ("user", [2]), ("assistant", [3])],
        ],
    },
    {
        "name": "mqa_qknorm_r1_bias_two_images",
        "description": "MQA 4/1 with head_dim 16 (nq*hd = 64 != hidden 32), qk_norm on, rope_theta 1e6, "
        "rms eps 1e-6, tied; pixel shuffle r=1 (identity) with projector bias; one sample holding "
        "two images (16 tokens each) in one user turn.",
        "config": {
            "llm": {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "num_key_value_heads": 1, "head_dim": 16, "intermediate_size": 96,
                    "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "qk_norm": True,
                    "tie_word_embeddings": True},
            "vision": {"image_size": 16, "patch_size": 4, "hidden_size": 16, "intermediate_size": 64,
                       **VISION_SMALL},
            "projector": {"pixel_shuffle": 1, "bias": True},
        },
        "samples": [
            [("user", [2, "image", 1, "image", 2]), ("assistant", [6])],
        ],
    },
    {
        "name": "mha_qknorm_r4_untied_mixed",
        "description": "MHA 4/4, qk_norm on, untied lm_head, large norm eps 1e-2 (LLM and vision) so a "
        "hard-coded eps shows; pixel shuffle r=4 (grid 8 -> 4 tokens of 16*16 channels) with "
        "projector bias; right-padded batch of 3: two images in one sample, a text-only sample, "
        "one image.",
        "config": {
            "llm": {"vocab_size": 96, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "num_key_value_heads": 4, "intermediate_size": 64, "rope_theta": 10000.0,
                    "rms_norm_eps": 1e-2, "qk_norm": True, "tie_word_embeddings": False},
            "vision": {"image_size": 32, "patch_size": 4, "hidden_size": 16, "intermediate_size": 32,
                       "layer_norm_eps": 1e-2, **VISION_SMALL},
            "projector": {"pixel_shuffle": 4, "bias": True},
        },
        "samples": [
            [("user", ["image", 2]), ("assistant", [3]), ("user", [1, "image"]), ("assistant", [4])],
            [("user", [5]), ("assistant", [7])],
            [("user", [2, "image", 2]), ("assistant", [2])],
        ],
    },
    {
        "name": "text_only_batch",
        "description": "A batch with no image at all (input.pixel_values has 0 images): GQA 2/1, "
        "qk_norm off, untied, default intermediate_size; right-padded batch of 2.",
        "config": {
            "llm": {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                    "num_key_value_heads": 1, "rope_theta": 10000.0, "qk_norm": False,
                    "tie_word_embeddings": False},
            "vision": {"image_size": 16, "patch_size": 8, "hidden_size": 16, "intermediate_size": 32,
                       **VISION_SMALL},
            "projector": {"pixel_shuffle": 2, "bias": False},
        },
        "samples": [
            [("user", [4]), ("assistant", [6])],
            [("system", [1]), ("user", [3]), ("assistant", [2]), ("user", [1]), ("assistant", [3])],
        ],
    },
]


def build_sample(turns, N, vocab, g):
    """ChatML-shaped ids: per turn [IM_START, role, NEWLINE, content..., IM_END, NEWLINE].

    Supervised (label mask 1): assistant content and its closing IM_END, NEWLINE.
    Content items: an int k = k random text tokens, "image" = N image tokens.
    """
    ids, mask, images = [], [], 0
    for role, content in turns:
        body = []
        for item in content:
            if item == "image":
                body += [IMAGE_TOKEN_ID] * N
                images += 1
            else:
                body += torch.randint(FIRST_TEXT_ID, vocab, (item,), generator=g).tolist()
        ids += [IM_START, ROLE_IDS[role], NEWLINE] + body + [IM_END, NEWLINE]
        supervised = 1 if role == "assistant" else 0
        mask += [0, 0, 0] + [supervised] * (len(body) + 2)
    return ids, mask, images


def build_inputs(case, cfg, g):
    N = tokens_per_image(cfg)
    rows = [build_sample(turns, N, cfg["llm"]["vocab_size"], g) for turns in case["samples"]]
    T = max(len(ids) for ids, _, _ in rows)
    ids = torch.full((len(rows), T), PAD, dtype=torch.int64)
    mask = torch.zeros((len(rows), T), dtype=torch.int64)
    for b, (row_ids, row_mask, _) in enumerate(rows):
        ids[b, : len(row_ids)] = torch.tensor(row_ids)
        mask[b, : len(row_mask)] = torch.tensor(row_mask)
    per_sample = torch.tensor([n for _, _, n in rows], dtype=torch.int64)
    v = cfg["vision"]
    S = v["image_size"]
    pixels = torch.randn((int(per_sample.sum()), v["num_channels"], S, S), generator=g, dtype=torch.float32)
    return ids, mask, pixels, per_sample


def forward_backward(W32, cfg, inputs, dtype):
    """Logits, loss, per-sample sums and counts, intermediates and trainable grads in `dtype`."""
    ids, mask, pixels, per_sample = inputs
    trainable = set(trainable_names(cfg))
    W = {n: t.to(dtype).requires_grad_(n in trainable) for n, t in W32.items()}
    inter = {}
    logits = vlm_logits(W, cfg, ids, pixels.to(dtype), per_sample, IMAGE_TOKEN_ID, inter)
    loss, sums, counts = masked_loss(logits, ids, mask)
    loss.backward()
    # A batch without images leaves the projector out of the graph: its gradient is zero.
    grads = {n: W[n].grad if W[n].grad is not None else torch.zeros_like(W[n]) for n in trainable_names(cfg)}
    return logits.detach(), loss.detach(), sums.detach(), counts, inter, grads


def rel_err(a, b):
    """max|a - b| / max|b|: the error relative to the tensor's scale."""
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def check_loss_against_torch(logits, ids, mask, loss):
    labels = ids[:, 1:].clone()
    labels[mask[:, 1:] == 0] = -100
    ref = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
    if not abs(ref.item() - loss.item()) < 1e-12:
        raise AssertionError(f"masked loss {loss.item()} != F.cross_entropy {ref.item()}")


def check_directional_derivative(W32, cfg, inputs, grads, g):
    """(f(θ+εv) − f(θ−εv)) / 2ε against <∇f, v> for a random direction v over the trainable tensors."""
    ids, mask, pixels, per_sample = inputs
    v = {n: torch.randn(grads[n].shape, generator=g, dtype=torch.float64) for n in grads}
    eps = 1e-6

    def loss_at(sign):
        W = {n: t.double() + (sign * eps * v[n] if n in v else 0) for n, t in W32.items()}
        with torch.no_grad():
            logits = vlm_logits(W, cfg, ids, pixels.double(), per_sample, IMAGE_TOKEN_ID)
            return masked_loss(logits, ids, mask)[0].item()

    numeric = (loss_at(1) - loss_at(-1)) / (2 * eps)
    analytic = sum((grads[n] * v[n]).sum().item() for n in v)
    err = abs(numeric - analytic) / max(abs(analytic), 1e-12)
    if not err < 1e-6:
        raise AssertionError(f"gradient vs finite difference: analytic {analytic}, numeric {numeric}")
    return err


def check_images_matter(W32, cfg, inputs, loss, g):
    ids, mask, pixels, per_sample = inputs
    if pixels.shape[0] == 0:
        return 0.0
    other = torch.randn(pixels.shape, generator=g, dtype=torch.float64)
    W = {n: t.double() for n, t in W32.items()}
    with torch.no_grad():
        changed = masked_loss(vlm_logits(W, cfg, ids, other, per_sample, IMAGE_TOKEN_ID), ids, mask)[0].item()
    rel = abs(changed - loss.item()) / loss.item()
    if not rel > 1e-3:
        raise AssertionError(f"other pixels change the loss only by {rel:.2e} relative")
    return rel


def check_merge_rejects_bad_runs(cfg, inputs):
    ids, _, pixels, per_sample = inputs
    if pixels.shape[0] == 0:
        return
    H = cfg["llm"]["hidden_size"]
    N = tokens_per_image(cfg)
    rows = torch.zeros(pixels.shape[0], N, H)
    embeds = torch.zeros(*ids.shape, H)
    b = int(torch.nonzero(per_sample)[0])
    short = ids.clone()
    short[b, (ids[b] == IMAGE_TOKEN_ID).nonzero()[0]] = FIRST_TEXT_ID  # run of N - 1 (or a split run)
    fewer = per_sample.clone()
    fewer[b] -= 1
    for bad_ids, bad_counts, bad_rows in ((short, per_sample, rows), (ids, fewer, rows[1:])):
        try:
            merge_image_rows(embeds, bad_ids, bad_rows, bad_counts, IMAGE_TOKEN_ID)
        except ValueError:
            continue
        raise AssertionError("merge accepted a bad image run / image count")


def _unshuffle_channel_major(x, r):
    """torch.nn.PixelUnshuffle's channel order [d][dr][dc]: the classic mistake SPEC §1.4 warns of."""
    n, S, D = x.shape
    Gr = math.isqrt(S) // r
    return x.reshape(n, Gr, r, Gr, r, D).permute(0, 1, 3, 5, 2, 4).reshape(n, Gr * Gr, D * r * r)


def _rope_interleaved(x, theta):
    """Rotates pairs (2i, 2i+1) instead of (i, i + hd/2)."""
    B, T, nh, hd = x.shape
    pairs = x.reshape(B, T, nh, hd // 2, 2).transpose(-1, -2).reshape(B, T, nh, hd)
    y = _rope(pairs, theta)
    return y.reshape(B, T, nh, 2, hd // 2).transpose(-1, -2).reshape(B, T, nh, hd)


def _attention_kv_head_modulo(q, k, v):
    """Query head h reads kv head h % nkv instead of h / (nq/nkv)."""
    rep = q.shape[2] // k.shape[2]
    return _causal_attention(q, k.repeat(1, 1, rep, 1), v.repeat(1, 1, rep, 1))


def _rms_norm_fixed_eps(x, weight, eps):
    """Ignores the configured eps."""
    return _rms_norm(x, weight, 1e-5)


def _clip_with_post_layernorm(W, cfg, pixel_values):
    pre = "vision_encoder.vision_model."
    x = _clip_features(W, cfg, pixel_values)
    eps = cfg["vision"]["layer_norm_eps"]
    return model_ref.layer_norm(x, W[pre + "post_layernorm.weight"], W[pre + "post_layernorm.bias"], eps)


_rope, _causal_attention, _rms_norm = model_ref.rope, model_ref.causal_attention, model_ref.rms_norm
_clip_features = model_ref.clip_features


def mutations(cfg, with_images):
    """Plausible implementation mistakes, as (name, model_ref function name, replacement)."""
    found = [("rope_interleaved", "rope", _rope_interleaved)]
    c = cfg["llm"]
    if 1 < c["num_key_value_heads"] < c["num_attention_heads"]:
        found.append(("gqa_head_modulo", "causal_attention", _attention_kv_head_modulo))
    if c["rms_norm_eps"] >= 1e-3:
        found.append(("rms_eps_fixed", "rms_norm", _rms_norm_fixed_eps))
    if with_images:
        found.append(("clip_post_layernorm", "clip_features", _clip_with_post_layernorm))
        if cfg["projector"]["pixel_shuffle"] > 1:
            found.append(("pixel_unshuffle_order", "pixel_shuffle", _unshuffle_channel_major))
    return found


def check_goldens_catch_mistakes(W32, cfg, inputs, logits, grads):
    """Each mistake must move the logits by > 1e-3 or some gradient by > 1e-2 (relative): 10x the
    tolerances of the tests, so a test against these goldens cannot pass with that mistake."""
    found = {}
    for name, attr, wrong in mutations(cfg, inputs[2].shape[0] > 0):
        original = getattr(model_ref, attr)
        setattr(model_ref, attr, wrong)
        try:
            bad_logits, _, _, _, _, bad_grads = forward_backward(W32, cfg, inputs, torch.float64)
        finally:
            setattr(model_ref, attr, original)
        logit_rel = rel_err(bad_logits, logits)
        grad_rel = max(rel_err(bad_grads[n], grads[n]) for n in grads)
        if not (logit_rel > 1e-3 or grad_rel > 1e-2):
            raise AssertionError(f"goldens do not catch {name}: logits {logit_rel:.1e}, grads {grad_rel:.1e}")
        found[name] = [round(logit_rel, 6), round(grad_rel, 6)]
    return found


def make_case(case, seed, out_dir):
    cfg = resolve_config(case["config"])
    g = torch.Generator().manual_seed(seed)
    W32 = random_weights(cfg, seed)
    inputs = build_inputs(case, cfg, g)
    ids, mask, pixels, per_sample = inputs

    logits, loss, sums, counts, inter, grads = forward_backward(W32, cfg, inputs, torch.float64)
    report = {"loss": loss.item(), "ln_vocab": float(torch.log(torch.tensor(cfg["llm"]["vocab_size"])))}
    report["rms_text_embed"] = W32["model.embed_tokens.weight"].pow(2).mean().sqrt().item()
    report["rms_image_embed"] = inter["image_embeds"].detach().pow(2).mean().sqrt().item() if pixels.shape[0] else 0.0
    check_loss_against_torch(logits, ids, mask, loss)
    report["fd_rel_err"] = check_directional_derivative(W32, cfg, inputs, grads, g)
    report["images_change_loss_rel"] = check_images_matter(W32, cfg, inputs, loss, g)
    check_merge_rejects_bad_runs(cfg, inputs)
    report["mistakes_logit_grad_rel"] = check_goldens_catch_mistakes(W32, cfg, inputs, logits, grads)
    if pixels.shape[0]:
        report["clip_vs_hf"] = hf_parity.check_clip(W32, cfg, pixels)
        hf_parity.check_pixel_shuffle(inter["vision_features"].detach(), cfg["projector"]["pixel_shuffle"])
    embeds = {n: t.double() for n, t in W32.items()}["model.embed_tokens.weight"][ids]
    report["llm_vs_hf"] = hf_parity.check_llm(W32, cfg, embeds)

    logits32, loss32, _, _, _, grads32 = forward_backward(W32, cfg, inputs, torch.float32)
    report["fp32_logits_rel"] = rel_err(logits32, logits)
    report["fp32_loss_rel"] = abs(loss32.item() - loss.item()) / loss.item()
    report["fp32_grad_rel_max"] = max(rel_err(grads32[n], grads[n]) for n in grads)
    if not (report["fp32_logits_rel"] < 1e-5 and report["fp32_loss_rel"] < 1e-5 and report["fp32_grad_rel_max"] < 1e-4):
        raise AssertionError(f"{case['name']}: float32 run too far from float64 goldens: {report}")

    tensors = {n: t.contiguous() for n, t in W32.items()}
    tensors["input.ids"] = ids
    tensors["input.label_mask"] = mask
    tensors["input.pixel_values"] = pixels
    tensors["input.images_per_sample"] = per_sample
    tensors["output.logits"] = logits.float()
    tensors["output.loss"] = loss.float()
    tensors["output.sample_loss"] = (sums / counts.clamp_min(1)).float()
    tensors["output.sample_tokens"] = counts.to(torch.int64)
    tensors["output.vision_features"] = inter["vision_features"].detach().float().contiguous()
    tensors["output.image_embeds"] = inter["image_embeds"].detach().float().contiguous()
    for n, grad in grads.items():
        tensors["grad." + n] = grad.float()
    path = os.path.join(out_dir, case["name"] + ".safetensors")
    safetensors.torch.save_file(tensors, path, metadata={"case": case["name"]})
    meta = {
        "description": case["description"],
        "seed": seed,
        "image_token_id": IMAGE_TOKEN_ID,
        "pad_token_id": PAD,
        "tokens_per_image": tokens_per_image(cfg),
        "config": {"model_type": "minivlm", **case["config"]},
    }
    with open(os.path.join(out_dir, case["name"] + ".json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    report["bytes"] = os.path.getsize(path)
    return report


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "goldens", "model"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    total = 0
    for index, case in enumerate(CASES):
        report = make_case(case, 1000 + index, args.out)
        total += report["bytes"]
        print(case["name"], json.dumps(report), flush=True)
    print(f"total {total} bytes in {len(CASES)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
