"""Model FLOPs of the benchmark workloads (2 per multiply-add of every matmul), shared by
scripts/bench/run and scripts/bench/gpu_day_one.py.

Training = 3× the forward of LLM and projector (backward counted as twice the forward) + the
forward of the frozen vision tower (no backward). MoE layers count the router and the
num_experts_per_tok experts each token runs. Element-wise work (norms, activations, softmax) is
not counted.
"""
import json


def read_config(path):
    """The config's sizes, with SPEC §1.1's derived defaults (head_dim, intermediate_size)."""
    with open(path) as f:
        cfg = json.load(f)
    c = cfg["llm"]
    c.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
    c.setdefault("intermediate_size", 64 * -(-c["hidden_size"] * 8 // (3 * 64)))
    v = cfg["vision"]
    v.setdefault("type", "clip")
    v.setdefault("num_channels", 3)
    pj = cfg.setdefault("projector", {})
    pj.setdefault("pixel_shuffle", 2)
    pj.setdefault("type", "linear")
    return cfg


def grid(cfg):
    return cfg["vision"]["image_size"] // cfg["vision"]["patch_size"]


def tokens_per_image(cfg):
    """Image tokens of one tile: (G / r)²."""
    return (grid(cfg) // cfg["projector"]["pixel_shuffle"]) ** 2


def llm_flops(cfg, B, T, context=None):
    """Forward FLOPs of the LLM (with the head) on B×T new tokens; attention against `context`
    keys per token on average (default: causal over T)."""
    c = cfg["llm"]
    H, I, hd, V = c["hidden_size"], c["intermediate_size"], c["head_dim"], c["vocab_size"]
    nq, nkv, L = c["num_attention_heads"], c["num_key_value_heads"], c["num_hidden_layers"]
    if c.get("use_moe"):
        mi = c.get("moe_intermediate_size") or I
        ffn = c["num_experts_per_tok"] * 3 * H * mi + H * c["num_experts"]
    else:
        ffn = 3 * H * I
    weights = L * (H * (nq + 2 * nkv) * hd + nq * hd * H + ffn) + H * V
    keys = T / 2 if context is None else context
    return 2 * B * T * (weights + L * nq * hd * 2 * keys)


def vision_flops(cfg, n):
    """Forward FLOPs of the vision tower on n tiles (CLIP has a class token; SigLIP does not)."""
    v = cfg["vision"]
    D, VI, G = v["hidden_size"], v["intermediate_size"], grid(cfg)
    Lv = G * G + (1 if v["type"] == "clip" else 0)
    per_tok = v["num_hidden_layers"] * (4 * D * D + 2 * D * VI + 2 * Lv * D)
    return 2 * n * (Lv * per_tok + G * G * v["num_channels"] * v["patch_size"] ** 2 * D)


def projector_flops(cfg, n):
    r, H = cfg["projector"]["pixel_shuffle"], cfg["llm"]["hidden_size"]
    per_tok = cfg["vision"]["hidden_size"] * r * r * H
    if cfg["projector"]["type"] == "mlp":
        per_tok += H * H
    return 2 * n * tokens_per_image(cfg) * per_tok


def train_flops(cfg, B, T, tiles=1, vision=True):
    """One training step: B samples of T tokens, one image of `tiles` tiles each; without
    `vision` the tower's forward is left out (its features cached)."""
    f = 3 * (llm_flops(cfg, B, T) + projector_flops(cfg, B * tiles))
    return f + (vision_flops(cfg, B * tiles) if vision else 0)


def prefill_flops(cfg, P):
    return llm_flops(cfg, 1, P)


def decode_flops(cfg, P, new_tokens):
    return llm_flops(cfg, 1, new_tokens, context=P + new_tokens / 2)
