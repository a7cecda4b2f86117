#!/usr/bin/env python3
"""The minivlm model (SPEC.md §1) as a PyTorch eager nn.Module with a KV cache, and the same
workloads as `minivlm bench-model`, printing the same one-line JSON.

    torch_model.py --what train    --config C --batch 4 --seq 256 [--warmup 1 --reps 5]
    torch_model.py --what generate --config C --prompt 256 --new-tokens 128

Written the way a PyTorch user would: nn.Linear, F.scaled_dot_product_attention (fused, causal,
GQA by repeating kv heads), torch.optim.AdamW, autograd. Threads: OMP_NUM_THREADS or all cores,
set with torch.set_num_threads. The layer math follows scripts/reference/model_ref.py.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import model_ref  # noqa: E402


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rope_tables(theta, hd, positions):
    half = hd // 2
    inv_freq = theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / hd)
    angle = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return angle.cos().float()[None, :, None, :], angle.sin().float()[None, :, None, :]


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, hd, I = c["hidden_size"], c["head_dim"], c["intermediate_size"]
        self.nq, self.nkv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], hd
        self.input_layernorm = RMSNorm(H, c["rms_norm_eps"])
        self.q_proj = nn.Linear(H, self.nq * hd, bias=False)
        self.k_proj = nn.Linear(H, self.nkv * hd, bias=False)
        self.v_proj = nn.Linear(H, self.nkv * hd, bias=False)
        self.o_proj = nn.Linear(self.nq * hd, H, bias=False)
        self.post_attention_layernorm = RMSNorm(H, c["rms_norm_eps"])
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, h, cos, sin, cache=None, start=0):
        B, T, _ = h.shape
        a = self.input_layernorm(h)
        q = apply_rope(self.q_proj(a).view(B, T, self.nq, self.hd), cos, sin)
        k = apply_rope(self.k_proj(a).view(B, T, self.nkv, self.hd), cos, sin)
        v = self.v_proj(a).view(B, T, self.nkv, self.hd)
        if cache is not None:  # cache: ([B, max, nkv, hd], [B, max, nkv, hd])
            cache[0][:, start : start + T] = k
            cache[1][:, start : start + T] = v
            k, v = cache[0][:, : start + T], cache[1][:, : start + T]
        rep = self.nq // self.nkv
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        # With a cache, a single new row sees every key; a longer chunk is causal from position 0.
        o = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1)
        h = h + self.o_proj(o.transpose(1, 2).reshape(B, T, -1))
        m = self.post_attention_layernorm(h)
        return h + self.down_proj(F.silu(self.gate_proj(m)) * self.up_proj(m))


class ClipLayer(nn.Module):
    def __init__(self, v):
        super().__init__()
        D, I = v["hidden_size"], v["intermediate_size"]
        self.heads = v["num_attention_heads"]
        self.layer_norm1 = nn.LayerNorm(D, eps=v["layer_norm_eps"])
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(D, D) for _ in range(4))
        self.layer_norm2 = nn.LayerNorm(D, eps=v["layer_norm_eps"])
        self.fc1, self.fc2 = nn.Linear(D, I), nn.Linear(I, D)

    def forward(self, x):
        n, L, D = x.shape
        a = self.layer_norm1(x)
        q, k, v = (p(a).view(n, L, self.heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, L, D)
        x = x + self.out_proj(o)
        f = self.fc1(self.layer_norm2(x))
        return x + self.fc2(f * torch.sigmoid(1.702 * f))


class ClipVision(nn.Module):
    def __init__(self, v):
        super().__init__()
        D, p, G = v["hidden_size"], v["patch_size"], v["image_size"] // v["patch_size"]
        self.patch_embedding = nn.Conv2d(v["num_channels"], D, p, stride=p, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(D) * 0.02)
        self.position_embedding = nn.Parameter(torch.randn(G * G + 1, D) * 0.02)
        self.pre_layrnorm = nn.LayerNorm(D, eps=v["layer_norm_eps"])
        self.layers = nn.ModuleList(ClipLayer(v) for _ in range(v["num_hidden_layers"]))

    def forward(self, pixels):
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = self.pre_layrnorm(torch.cat([cls, x], dim=1) + self.position_embedding)
        for layer in self.layers:
            x = layer(x)
        return x[:, 1:]


class MiniVLM(nn.Module):
    def __init__(self, cfg, image_token_id):
        super().__init__()
        self.cfg, self.image_token_id = cfg, image_token_id
        c = cfg["llm"]
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.vision = ClipVision(cfg["vision"])
        r = cfg["projector"]["pixel_shuffle"]
        self.proj = nn.Linear(cfg["vision"]["hidden_size"] * r * r, c["hidden_size"], bias=cfg["projector"]["bias"])

    def init_weights(self):
        """As minivlm's init: matrices N(0, 0.02²), biases 0, norms 1."""
        for name, p in self.named_parameters():
            if "norm" in name:
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def hidden(self, h, cache=None, start=0):
        c = self.cfg["llm"]
        pos = torch.arange(start, start + h.shape[1])
        cos, sin = rope_tables(c["rope_theta"], c["head_dim"], pos)
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, None if cache is None else cache[i], start)
        return self.norm(h)

    def logits(self, h):
        return h @ self.embed_tokens.weight.T

    def embed(self, ids, pixels):
        h = self.embed_tokens(ids)
        with torch.no_grad():
            feats = self.vision(pixels)
        rows = self.proj(model_ref.pixel_shuffle_by_reshape(feats, self.cfg["projector"]["pixel_shuffle"]))
        mask = ids == self.image_token_id  # one run of N image tokens per sample
        return h.masked_scatter(mask[..., None], rows.reshape(-1, rows.shape[-1]))

    def loss(self, ids, label_mask, pixels):
        logits = self.logits(self.hidden(self.embed(ids, pixels)))
        targets = ids[:, 1:].masked_fill(label_mask[:, 1:] == 0, -100)
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def random_ids(g, shape, vocab, image_token):
    ids = torch.randint(0, vocab - 1, shape, generator=g)
    return ids + (ids >= image_token).long()


def bench_train(model, cfg, B, T, warmup, reps, g):
    N = model_ref.tokens_per_image(cfg)
    S = cfg["vision"]["image_size"]
    ids = random_ids(g, (B, T), cfg["llm"]["vocab_size"], model.image_token_id)
    ids[:, 1 : N + 1] = model.image_token_id
    mask = torch.zeros(B, T, dtype=torch.long)
    mask[:, N + 1 :] = 1
    pixels = torch.randn(B, cfg["vision"]["num_channels"], S, S, generator=g)
    for p in model.vision.parameters():
        p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
    secs = []
    for i in range(warmup + reps):
        t0 = time.perf_counter()
        loss = model.loss(ids, mask, pixels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            secs.append(time.perf_counter() - t0)
    return {"tokens": B * T, "seconds": secs, "loss": loss.item()}


@torch.no_grad()
def bench_generate(model, cfg, prompt, new_tokens, warmup, reps, g):
    c = cfg["llm"]
    ids = random_ids(g, (1, prompt), c["vocab_size"], model.image_token_id)
    prefill, decode = [], []
    for i in range(warmup + reps):
        shape = (1, prompt + new_tokens, c["num_key_value_heads"], c["head_dim"])
        cache = [(torch.zeros(shape), torch.zeros(shape)) for _ in range(c["num_hidden_layers"])]
        t0 = time.perf_counter()
        h = model.hidden(model.embed_tokens(ids), cache, 0)
        t1 = time.perf_counter()
        pos = prompt
        for _ in range(new_tokens):
            nxt = model.logits(h[:, -1:]).argmax(-1)
            h = model.hidden(model.embed_tokens(nxt), cache, pos)
            pos += 1
        if i >= warmup:
            prefill.append(t1 - t0)
            decode.append(time.perf_counter() - t1)
    return {"prompt_tokens": prompt, "new_tokens": new_tokens, "prefill_seconds": prefill, "decode_seconds": decode}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", required=True, choices=["train", "generate"])
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    torch.manual_seed(1234)
    with open(a.config) as f:
        cfg = model_ref.resolve_config(json.load(f))
    model = MiniVLM(cfg, cfg["llm"]["vocab_size"] - 1)
    model.init_weights()
    g = torch.Generator().manual_seed(7)
    if a.what == "train":
        out = bench_train(model, cfg, a.batch, a.seq, a.warmup, a.reps, g)
    else:
        out = bench_generate(model, cfg, a.prompt, a.new_tokens, a.warmup, a.reps, g)
    out.update(what=a.what, threads=torch.get_num_threads(),
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
