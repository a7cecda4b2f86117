"""Independent PyTorch reference of the minivlm model (SPEC.md §1).

Plain functional PyTorch over a dict of weights named as in SPEC §1.6, so the same dict is what
safetensors files hold. Everything computes in the dtype of the weights it is given (float32 or
float64); the goldens use float64 on float32-rounded weights.

    cfg = resolve_config(json.load(open("config.json")))
    logits = vlm_logits(weights, cfg, ids, pixel_values, images_per_sample, image_token_id)
    loss, sums, counts = masked_loss(logits, ids, label_mask)
"""

import math

import torch
import torch.nn.functional as F

LLM_DEFAULTS = {
    "vocab_size": 6400,
    "hidden_size": 512,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "head_dim": None,  # hidden_size / num_attention_heads
    "intermediate_size": None,  # 64 * ceil(hidden_size * 8/3 / 64)
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-5,
    "qk_norm": False,
    "tie_word_embeddings": True,
    "max_position_embeddings": 32768,
}
VISION_DEFAULTS = {
    "type": "clip",
    "image_size": 224,
    "patch_size": 16,
    "num_channels": 3,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-5,
    "hidden_act": "quick_gelu",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
}
PROJECTOR_DEFAULTS = {"pixel_shuffle": 2, "bias": False}
TOP_DEFAULTS = {"model_type": "minivlm", "image_token": "<|image_pad|>"}


def _merge_section(name, raw, defaults):
    if not isinstance(raw, dict):
        raise ValueError(f"config: '{name}' must be an object")
    unknown = sorted(set(raw) - set(defaults))
    if unknown:
        raise ValueError(f"config: unknown key(s) {unknown} in '{name}'; valid: {sorted(defaults)}")
    out = dict(defaults)
    out.update(raw)
    return out


def resolve_config(raw):
    """SPEC §1.1: unknown keys are an error, missing keys take defaults, derived values filled in."""
    sections = {"llm": LLM_DEFAULTS, "vision": VISION_DEFAULTS, "projector": PROJECTOR_DEFAULTS}
    unknown = sorted(set(raw) - set(sections) - set(TOP_DEFAULTS))
    if unknown:
        valid = sorted(set(sections) | set(TOP_DEFAULTS))
        raise ValueError(f"config: unknown key(s) {unknown}; valid: {valid}")
    cfg = {k: raw.get(k, v) for k, v in TOP_DEFAULTS.items()}
    if cfg["model_type"] != "minivlm":
        raise ValueError(f"config: model_type must be 'minivlm', got {cfg['model_type']!r}")
    for name, defaults in sections.items():
        cfg[name] = _merge_section(name, raw.get(name, {}), defaults)

    llm = cfg["llm"]
    if llm["head_dim"] is None:
        if llm["hidden_size"] % llm["num_attention_heads"]:
            raise ValueError("config: llm.hidden_size is not a multiple of num_attention_heads")
        llm["head_dim"] = llm["hidden_size"] // llm["num_attention_heads"]
    if llm["intermediate_size"] is None:
        llm["intermediate_size"] = 64 * math.ceil(llm["hidden_size"] * 8 / 3 / 64)
    if llm["num_attention_heads"] % llm["num_key_value_heads"]:
        raise ValueError("config: llm.num_attention_heads is not a multiple of num_key_value_heads")
    if llm["head_dim"] % 2:
        raise ValueError("config: llm.head_dim must be even for RoPE")

    vis = cfg["vision"]
    if vis["type"] != "clip":
        raise ValueError(f"config: vision.type {vis['type']!r} is not implemented here; valid: ['clip']")
    if vis["hidden_act"] != "quick_gelu":
        raise ValueError(f"config: vision.hidden_act {vis['hidden_act']!r}; valid: ['quick_gelu']")
    if vis["image_size"] % vis["patch_size"]:
        raise ValueError("config: vision.image_size is not a multiple of vision.patch_size")
    if vis["hidden_size"] % vis["num_attention_heads"]:
        raise ValueError("config: vision.hidden_size is not a multiple of num_attention_heads")
    grid = vis["image_size"] // vis["patch_size"]
    r = cfg["projector"]["pixel_shuffle"]
    if r < 1 or grid % r:
        raise ValueError(f"config: grid {grid} is not divisible by projector.pixel_shuffle {r}")
    return cfg


def grid_size(cfg):
    return cfg["vision"]["image_size"] // cfg["vision"]["patch_size"]


def tokens_per_image(cfg):
    """N = (G / r)² (SPEC §1.1)."""
    return (grid_size(cfg) // cfg["projector"]["pixel_shuffle"]) ** 2


def llm_weight_shapes(cfg):
    c = cfg["llm"]
    V, H, I, hd = c["vocab_size"], c["hidden_size"], c["intermediate_size"], c["head_dim"]
    nq, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    shapes = {"model.embed_tokens.weight": (V, H)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (H,)
        shapes[p + "self_attn.q_proj.weight"] = (nq * hd, H)
        shapes[p + "self_attn.k_proj.weight"] = (nkv * hd, H)
        shapes[p + "self_attn.v_proj.weight"] = (nkv * hd, H)
        shapes[p + "self_attn.o_proj.weight"] = (H, nq * hd)
        if c["qk_norm"]:
            shapes[p + "self_attn.q_norm.weight"] = (hd,)
            shapes[p + "self_attn.k_norm.weight"] = (hd,)
        shapes[p + "post_attention_layernorm.weight"] = (H,)
        shapes[p + "mlp.gate_proj.weight"] = (I, H)
        shapes[p + "mlp.up_proj.weight"] = (I, H)
        shapes[p + "mlp.down_proj.weight"] = (H, I)
    shapes["model.norm.weight"] = (H,)
    if not c["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (V, H)
    return shapes


def projector_weight_shapes(cfg):
    r = cfg["projector"]["pixel_shuffle"]
    H, D = cfg["llm"]["hidden_size"], cfg["vision"]["hidden_size"]
    shapes = {"vision_proj.proj.weight": (H, D * r * r)}
    if cfg["projector"]["bias"]:
        shapes["vision_proj.proj.bias"] = (H,)
    return shapes


def vision_weight_shapes(cfg):
    v = cfg["vision"]
    D, I, p, C = v["hidden_size"], v["intermediate_size"], v["patch_size"], v["num_channels"]
    G = grid_size(cfg)
    pre = "vision_encoder.vision_model."
    shapes = {
        pre + "embeddings.class_embedding": (D,),
        pre + "embeddings.patch_embedding.weight": (D, C, p, p),
        pre + "embeddings.position_embedding.weight": (G * G + 1, D),
        pre + "pre_layrnorm.weight": (D,),
        pre + "pre_layrnorm.bias": (D,),
    }
    for i in range(v["num_hidden_layers"]):
        lp = f"{pre}encoder.layers.{i}."
        for ln in ("layer_norm1", "layer_norm2"):
            shapes[f"{lp}{ln}.weight"] = (D,)
            shapes[f"{lp}{ln}.bias"] = (D,)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"{lp}self_attn.{proj}.weight"] = (D, D)
            shapes[f"{lp}self_attn.{proj}.bias"] = (D,)
        shapes[f"{lp}mlp.fc1.weight"] = (I, D)
        shapes[f"{lp}mlp.fc1.bias"] = (I,)
        shapes[f"{lp}mlp.fc2.weight"] = (D, I)
        shapes[f"{lp}mlp.fc2.bias"] = (D,)
    shapes[pre + "post_layernorm.weight"] = (D,)
    shapes[pre + "post_layernorm.bias"] = (D,)
    return shapes


def weight_shapes(cfg):
    """Every tensor of model.safetensors (SPEC §1.6), name -> shape."""
    return {**llm_weight_shapes(cfg), **projector_weight_shapes(cfg), **vision_weight_shapes(cfg)}


def trainable_names(cfg):
    """LLM + projector; the vision encoder is always frozen (SPEC §1.3)."""
    return [*llm_weight_shapes(cfg), *projector_weight_shapes(cfg)]


def check_weights(weights, cfg):
    """Strict check (SPEC §1.6): lists every missing, unexpected or wrongly shaped tensor.

    A tied model may carry lm_head.weight if it equals model.embed_tokens.weight; it is dropped.
    """
    weights = dict(weights)
    if cfg["llm"]["tie_word_embeddings"] and "lm_head.weight" in weights:
        if not torch.equal(weights["lm_head.weight"], weights.get("model.embed_tokens.weight")):
            raise ValueError("weights: lm_head.weight differs from model.embed_tokens.weight in a tied model")
        del weights["lm_head.weight"]
    expected = weight_shapes(cfg)
    problems = [f"missing tensor {n} {list(s)}" for n, s in expected.items() if n not in weights]
    problems += [f"unexpected tensor {n}" for n in weights if n not in expected]
    problems += [
        f"tensor {n}: shape {list(weights[n].shape)}, expected {list(s)}"
        for n, s in expected.items()
        if n in weights and tuple(weights[n].shape) != tuple(s)
    ]
    if problems:
        raise ValueError("weights:\n  " + "\n  ".join(problems))
    return weights


# ---------------------------------------------------------------------------------------------
# MiniMind LLM (SPEC §1.2)


def rms_norm(x, weight, eps):
    """weight · x / sqrt(mean(x²) + eps), in at least fp32 (fp64 stays fp64)."""
    xf = x.to(torch.promote_types(x.dtype, torch.float32))
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (weight.to(y.dtype) * y).to(x.dtype)


def rope(x, theta):
    """Half-split rotary embedding on x [B, T, nh, hd], positions 0..T-1."""
    T, hd = x.shape[1], x.shape[3]
    half = hd // 2
    inv_freq = theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / hd)  # [hd/2]
    angle = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]  # [T, hd/2]
    cos = angle.cos().to(x.dtype)[None, :, None, :]
    sin = angle.sin().to(x.dtype)[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def causal_attention(q, k, v):
    """q [B, T, nq, hd], k/v [B, T, nkv, hd] -> [B, T, nq·hd]; query head h reads kv head h / (nq/nkv)."""
    B, T, nq, hd = q.shape
    rep = nq // k.shape[2]
    k = k.repeat_interleave(rep, dim=2)
    v = v.repeat_interleave(rep, dim=2)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)  # [B, nq, T, T]
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(future, float("-inf"))
    o = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(dim=-1), v)
    return o.reshape(B, T, nq * hd)


def decoder_layer(W, c, i, h):
    p = f"model.layers.{i}."
    B, T, _ = h.shape
    nq, nkv, hd, eps = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["rms_norm_eps"]
    a = rms_norm(h, W[p + "input_layernorm.weight"], eps)
    q = (a @ W[p + "self_attn.q_proj.weight"].T).view(B, T, nq, hd)
    k = (a @ W[p + "self_attn.k_proj.weight"].T).view(B, T, nkv, hd)
    v = (a @ W[p + "self_attn.v_proj.weight"].T).view(B, T, nkv, hd)
    if c["qk_norm"]:
        q = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps)
        k = rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
    q, k = rope(q, c["rope_theta"]), rope(k, c["rope_theta"])
    h = h + causal_attention(q, k, v) @ W[p + "self_attn.o_proj.weight"].T
    m = rms_norm(h, W[p + "post_attention_layernorm.weight"], eps)
    gate = m @ W[p + "mlp.gate_proj.weight"].T
    up = m @ W[p + "mlp.up_proj.weight"].T
    return h + (F.silu(gate) * up) @ W[p + "mlp.down_proj.weight"].T


def llm_logits(W, cfg, embeds):
    """embeds [B, T, H] (image rows already merged) -> logits [B, T, V]."""
    c = cfg["llm"]
    h = embeds
    for i in range(c["num_hidden_layers"]):
        h = decoder_layer(W, c, i, h)
    h = rms_norm(h, W["model.norm.weight"], c["rms_norm_eps"])
    head = W["model.embed_tokens.weight"] if c["tie_word_embeddings"] else W["lm_head.weight"]
    return h @ head.T


# ---------------------------------------------------------------------------------------------
# CLIP vision encoder (SPEC §1.3)


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def clip_attention(W, lp, x, heads):
    n, L, D = x.shape
    hd = D // heads

    def proj(name):
        return x @ W[f"{lp}self_attn.{name}.weight"].T + W[f"{lp}self_attn.{name}.bias"]

    q, k, v = (proj(name).view(n, L, heads, hd) for name in ("q_proj", "k_proj", "v_proj"))
    scores = torch.einsum("nqhd,nkhd->nhqk", q, k) / math.sqrt(hd)  # bidirectional, no mask
    o = torch.einsum("nhqk,nkhd->nqhd", scores.softmax(dim=-1), v).reshape(n, L, D)
    return o @ W[f"{lp}self_attn.out_proj.weight"].T + W[f"{lp}self_attn.out_proj.bias"]


def clip_features(W, cfg, pixel_values):
    """pixel_values [n, C, S, S] -> last hidden state without CLS [n, G², D] (no post_layernorm)."""
    v = cfg["vision"]
    pre = "vision_encoder.vision_model."
    eps, p = v["layer_norm_eps"], v["patch_size"]
    x = F.conv2d(pixel_values, W[pre + "embeddings.patch_embedding.weight"], stride=p)  # [n, D, G, G]
    x = x.flatten(2).transpose(1, 2)  # [n, G², D], token = row·G + col
    cls = W[pre + "embeddings.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + W[pre + "embeddings.position_embedding.weight"]
    x = layer_norm(x, W[pre + "pre_layrnorm.weight"], W[pre + "pre_layrnorm.bias"], eps)
    for i in range(v["num_hidden_layers"]):
        lp = f"{pre}encoder.layers.{i}."
        a = layer_norm(x, W[lp + "layer_norm1.weight"], W[lp + "layer_norm1.bias"], eps)
        x = x + clip_attention(W, lp, a, v["num_attention_heads"])
        m = layer_norm(x, W[lp + "layer_norm2.weight"], W[lp + "layer_norm2.bias"], eps)
        m = quick_gelu(m @ W[lp + "mlp.fc1.weight"].T + W[lp + "mlp.fc1.bias"])
        x = x + m @ W[lp + "mlp.fc2.weight"].T + W[lp + "mlp.fc2.bias"]
    return x[:, 1:]


# ---------------------------------------------------------------------------------------------
# Pixel shuffle and projector (SPEC §1.4)


def pixel_shuffle_by_index(x, r):
    """The SPEC §1.4 formula, literally: out[i][m] = in[(h2·r + dr)·G + (w2·r + dc)][d]."""
    n, S, D = x.shape
    G = math.isqrt(S)
    Gr = G // r
    i = torch.arange(S // (r * r))[:, None]
    m = torch.arange(D * r * r)[None, :]
    h2, w2 = i // Gr, i % Gr
    dr, dc, d = m // (r * D), (m % (r * D)) // D, m % D
    token = (h2 * r + dr) * G + (w2 * r + dc)  # [S/r², D·r²]
    return x[:, token, d.expand_as(token)]


def pixel_shuffle_by_reshape(x, r):
    """The same map as views: token (h2·r+dr, w2·r+dc) -> block (h2, w2), channel [dr][dc][d]."""
    n, S, D = x.shape
    Gr = math.isqrt(S) // r
    x = x.reshape(n, Gr, r, Gr, r, D)  # [n, h2, dr, w2, dc, d]
    x = x.permute(0, 1, 3, 2, 4, 5)  # [n, h2, w2, dr, dc, d]
    return x.reshape(n, Gr * Gr, r * r * D)


def pixel_shuffle(x, r):
    """[n, G², D] -> [n, G²/r², D·r²], computed both ways; they must agree exactly."""
    G = math.isqrt(x.shape[1])
    if G * G != x.shape[1] or G % r:
        raise ValueError(f"pixel_shuffle: {x.shape[1]} tokens are not a square grid divisible by r={r}")
    a = pixel_shuffle_by_reshape(x, r)
    b = pixel_shuffle_by_index(x, r)
    if not torch.equal(a, b):
        raise AssertionError("pixel_shuffle: index formula and reshape/permute disagree")
    return a


def project_images(W, cfg, features):
    """features [n, G², D] -> image rows [n, N, H]."""
    y = pixel_shuffle(features, cfg["projector"]["pixel_shuffle"]) @ W["vision_proj.proj.weight"].T
    if cfg["projector"]["bias"]:
        y = y + W["vision_proj.proj.bias"]
    return y


# ---------------------------------------------------------------------------------------------
# Merging image rows (SPEC §1.5), the full model, and the loss


def image_runs(ids_row, image_token_id):
    """Maximal runs of the image token in one sample: list of (start, length)."""
    runs, t, T = [], 0, len(ids_row)
    while t < T:
        if ids_row[t] == image_token_id:
            start = t
            while t < T and ids_row[t] == image_token_id:
                t += 1
            runs.append((start, t - start))
        else:
            t += 1
    return runs


def merge_image_rows(embeds, ids, image_rows, images_per_sample, image_token_id):
    """The k-th maximal image-token run of sample b receives the rows of that sample's image k.

    embeds [B, T, H]; image_rows [num_images, N, H] in order of appearance over the batch.
    """
    B = ids.shape[0]
    N = image_rows.shape[1]
    counts = [int(c) for c in images_per_sample]
    if len(counts) != B or sum(counts) != image_rows.shape[0]:
        raise ValueError(f"merge: images_per_sample {counts} does not match {image_rows.shape[0]} images")
    out = embeds.clone()
    first = 0
    for b in range(B):
        runs = image_runs(ids[b].tolist(), image_token_id)
        if len(runs) != counts[b]:
            raise ValueError(f"merge: sample {b} has {len(runs)} image-token runs but {counts[b]} images")
        for k, (start, length) in enumerate(runs):
            if length != N:
                raise ValueError(f"merge: sample {b} image run {k} at {start} has {length} tokens, expected {N}")
            out[b, start : start + N] = image_rows[first + k]
        first += counts[b]
    return out


def vlm_logits(W, cfg, ids, pixel_values, images_per_sample, image_token_id, intermediates=None):
    """ids [B, T] int64, pixel_values [num_images, C, S, S] -> logits [B, T, V].

    If `intermediates` is a dict it receives `vision_features` and `image_embeds`.
    """
    embeds = W["model.embed_tokens.weight"][ids]
    dtype = embeds.dtype
    if pixel_values.shape[0] > 0:
        features = clip_features(W, cfg, pixel_values.to(dtype))
        rows = project_images(W, cfg, features)
    else:
        H = cfg["llm"]["hidden_size"]
        features = embeds.new_zeros(0, grid_size(cfg) ** 2, cfg["vision"]["hidden_size"])
        rows = embeds.new_zeros(0, tokens_per_image(cfg), H)
    if intermediates is not None:
        intermediates["vision_features"] = features
        intermediates["image_embeds"] = rows
    embeds = merge_image_rows(embeds, ids, rows, images_per_sample, image_token_id)
    return llm_logits(W, cfg, embeds)


def masked_loss(logits, ids, label_mask):
    """Mean cross-entropy over supervised tokens.

    Position t's logits predict ids[t+1]; that prediction counts iff label_mask[t+1] == 1
    (label_mask[:, 0] is never used). The loss is summed over every counted prediction of the
    batch and divided by their number. Returns (loss, per-sample sums [B], per-sample counts [B]).
    """
    logp = logits[:, :-1].log_softmax(dim=-1)
    nll = -logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # [B, T-1]
    mask = label_mask[:, 1:].to(nll.dtype)
    sums = (nll * mask).sum(dim=1)
    counts = label_mask[:, 1:].sum(dim=1)
    total = int(counts.sum())
    if total == 0:
        raise ValueError("loss: no supervised token in the batch")
    return sums.sum() / total, sums, counts


def random_weights(cfg, seed):
    """Random float32 weights whose activations are far from trivial at small sizes.

    Matrices N(0, 1/fan_in) (std 0.06-0.25 at the golden sizes), token embeddings N(0, 0.2²),
    CLIP class/position embeddings N(0, 0.5²), norm weights 1 + N(0, 0.1²), biases N(0, 0.1²).
    """
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std, mean=0.0):
        return mean + std * torch.randn(shape, generator=g, dtype=torch.float32)

    W = {}
    for name, shape in weight_shapes(cfg).items():
        if "norm" in name and name.endswith(".weight"):
            W[name] = normal(shape, 0.1, 1.0)
        elif name.endswith(".bias"):
            W[name] = normal(shape, 0.1)
        elif "embed_tokens" in name:
            W[name] = normal(shape, 0.2)
        elif "class_embedding" in name or "position_embedding" in name:
            W[name] = normal(shape, 0.5)
        else:
            fan_in = math.prod(shape[1:])
            W[name] = normal(shape, fan_in**-0.5)
    return W
