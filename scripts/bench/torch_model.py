#!/usr/bin/env python3
"""The minivlm model (SPEC.md §1) as a PyTorch eager nn.Module with a KV cache, and the same
workloads as `minivlm bench-model`, printing the same one-line JSON.

    torch_model.py --what train    --config C --batch 4 --seq 256 [--tiles 1] [--warmup 1 --reps 5]
    torch_model.py --what generate --config C --prompt 256 --new-tokens 128
    either with [--bf16] [--device cpu|cuda]

Written the way a PyTorch user would: nn.Linear, F.scaled_dot_product_attention (fused, causal,
GQA by repeating kv heads), torch.optim.AdamW, autograd. Threads: OMP_NUM_THREADS or all cores,
set with torch.set_num_threads. The layer math follows scripts/reference/model_ref.py (CLIP +
linear projector, minimind2-v) and scripts/reference/minimind3v_ref.py (SigLIP + MLP projector,
q/k RMSNorm, MoE: minimind3-v). vision.type "smolvlm" runs transformers' own
SmolVLMForConditionalGeneration (Idefics3: SigLIP tower, pixel shuffle + Linear connector, Llama)
built from the config with random weights, attn_implementation "sdpa".

--bf16 wraps every forward (and the loss) in torch.autocast(device_type, dtype=torch.bfloat16):
weights and optimizer stay fp32, matmuls run in bf16. --device cuda runs on the GPU (timings end
with torch.cuda.synchronize()).
"""
import argparse
import contextlib
import json
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flops  # noqa: E402

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
        self.qk_norm = c.get("qk_norm", False)
        if self.qk_norm:  # MiniMind-3 / Qwen3: RMSNorm over head_dim of q and k, before RoPE
            self.q_norm, self.k_norm = RMSNorm(hd, c["rms_norm_eps"]), RMSNorm(hd, c["rms_norm_eps"])
        self.moe = MoE(c) if c.get("use_moe", False) else None
        if self.moe is None:
            self.mlp = SwiGLU(H, I)

    def forward(self, h, cos, sin, cache=None, start=0):
        B, T, _ = h.shape
        a = self.input_layernorm(h)
        q = self.q_proj(a).view(B, T, self.nq, self.hd)
        k = self.k_proj(a).view(B, T, self.nkv, self.hd)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
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
        if self.moe is None:
            return h + self.mlp(m), None
        y, aux = self.moe(m.reshape(B * T, -1))
        return h + y.view(B, T, -1), aux


class SwiGLU(nn.Module):
    def __init__(self, H, I):
        super().__init__()
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoE(nn.Module):
    """MiniMind-3's MOEFeedForward: softmax router, top-k experts (weights renormalised with
    norm_topk_prob), each a SwiGLU; tokens gathered per expert, outputs index_add-ed back. In
    training the load-balancing loss E · coef · Σ_e (tokens to e / N) · mean p_e."""

    def __init__(self, c):
        super().__init__()
        H, I = c["hidden_size"], c.get("moe_intermediate_size") or c["intermediate_size"]
        self.E, self.k = c["num_experts"], c["num_experts_per_tok"]
        self.norm, self.coef = c.get("norm_topk_prob", True), c.get("router_aux_loss_coef", 0.0)
        self.gate = nn.Linear(H, self.E, bias=False)
        self.experts = nn.ModuleList(SwiGLU(H, I) for _ in range(self.E))

    def forward(self, x):
        probs = torch.softmax(self.gate(x).float(), dim=-1)
        w, idx = torch.topk(probs, self.k, dim=-1)
        if self.norm:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        y = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            sel = idx == e
            rows = sel.any(-1).nonzero().flatten()
            if rows.numel() == 0:
                continue
            we = (w * sel).sum(-1)[rows]
            y = y.index_add(0, rows, (expert(x[rows]) * we[:, None]).to(y.dtype))
        aux = None
        if torch.is_grad_enabled():
            counts = torch.zeros(self.E, device=x.device).index_add(
                0, idx.flatten(), torch.ones(idx.numel(), device=x.device))
            aux = (counts / idx.shape[0] * probs.mean(0)).sum() * self.E * self.coef
        return y, aux


def vision_act(name):
    if name == "quick_gelu":
        return lambda f: f * torch.sigmoid(1.702 * f)
    if name == "gelu_pytorch_tanh":
        return lambda f: F.gelu(f, approximate="tanh")
    return F.gelu


class ClipLayer(nn.Module):
    """The pre-norm encoder layer of CLIP and SigLIP (the same computation, nn/vit.h)."""

    def __init__(self, v):
        super().__init__()
        D, I = v["hidden_size"], v["intermediate_size"]
        self.heads = v["num_attention_heads"]
        self.act = vision_act(v["hidden_act"])
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
        return x + self.fc2(self.act(self.fc1(self.layer_norm2(x))))


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


class SiglipVision(nn.Module):
    """SigLIP (SiglipVisionModel semantics): biased patch conv + learned positions, no class token,
    no pre-norm, the encoder layers, post_layernorm; features = all G² tokens."""

    def __init__(self, v):
        super().__init__()
        D, p, G = v["hidden_size"], v["patch_size"], v["image_size"] // v["patch_size"]
        self.patch_embedding = nn.Conv2d(v["num_channels"], D, p, stride=p)
        self.position_embedding = nn.Parameter(torch.randn(G * G, D) * 0.02)
        self.layers = nn.ModuleList(ClipLayer(v) for _ in range(v["num_hidden_layers"]))
        self.post_layernorm = nn.LayerNorm(D, eps=v["layer_norm_eps"])

    def forward(self, pixels):
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2) + self.position_embedding
        for layer in self.layers:
            x = layer(x)
        return self.post_layernorm(x)


class MlpProjector(nn.Module):
    """minimind-3v's projector: LayerNorm → Linear → GELU (erf) → Linear, both Linears biased."""

    def __init__(self, d_in, H, eps):
        super().__init__()
        self.norm = nn.LayerNorm(d_in, eps=eps)
        self.fc1, self.fc2 = nn.Linear(d_in, H), nn.Linear(H, H)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class MiniVLM(nn.Module):
    def __init__(self, cfg, image_token_id):
        super().__init__()
        self.cfg, self.image_token_id = cfg, image_token_id
        c = cfg["llm"]
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        v, pj = cfg["vision"], cfg["projector"]
        self.vision = ClipVision(v) if v["type"] == "clip" else SiglipVision(v)
        d_in = v["hidden_size"] * pj["pixel_shuffle"] ** 2
        if pj.get("type", "linear") == "mlp":
            self.proj = MlpProjector(d_in, c["hidden_size"], pj.get("layer_norm_eps", 1e-5))
        else:
            self.proj = nn.Linear(d_in, c["hidden_size"], bias=pj["bias"])

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
        """Decoder stack and final norm; self.aux: the MoE router loss of the call (training)."""
        c = self.cfg["llm"]
        pos = torch.arange(start, start + h.shape[1])
        cos, sin = (t.to(h.device) for t in rope_tables(c["rope_theta"], c["head_dim"], pos))
        self.aux = None
        for i, layer in enumerate(self.layers):
            h, aux = layer(h, cos, sin, None if cache is None else cache[i], start)
            if aux is not None:
                self.aux = aux if self.aux is None else self.aux + aux
        return self.norm(h)

    def logits(self, h):
        return h @ self.embed_tokens.weight.T

    def embed(self, ids, pixels):
        h = self.embed_tokens(ids)
        with torch.no_grad():
            feats = self.vision(pixels)
        r = self.cfg["projector"]["pixel_shuffle"]
        rows = self.proj(feats if r == 1 else model_ref.pixel_shuffle_by_reshape(feats, r))
        mask = ids == self.image_token_id  # the runs of N image tokens, tile after tile
        return h.masked_scatter(mask[..., None], rows.reshape(-1, rows.shape[-1]).to(h.dtype))

    def loss(self, ids, label_mask, pixels):
        logits = self.logits(self.hidden(self.embed(ids, pixels)))
        targets = ids[:, 1:].masked_fill(label_mask[:, 1:] == 0, -100)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                               ignore_index=-100)
        return loss if self.aux is None else loss + self.aux


def read_config(path):
    """flops.read_config with the defaults of the keys only the models here read."""
    cfg = flops.read_config(path)
    cfg["llm"].setdefault("qk_norm", False)
    v = cfg["vision"]
    v.setdefault("hidden_act", "quick_gelu" if v["type"] == "clip" else "gelu_pytorch_tanh")
    v.setdefault("layer_norm_eps", 1e-5)
    cfg["projector"].setdefault("bias", False)
    return cfg


tokens_per_image = flops.tokens_per_image


def random_ids(g, shape, vocab, image_token):
    ids = torch.randint(0, vocab - 1, shape, generator=g)
    return ids + (ids >= image_token).long()


def train_batch(cfg, image_token, B, T, K, g):
    """bench-model's batch: per sample [text, K runs of N image tokens with one text token between
    runs, text], supervised after the image; pixels [B·K, C, S, S], tile after tile."""
    N, S = tokens_per_image(cfg), cfg["vision"]["image_size"]
    ids = random_ids(g, (B, T), cfg["llm"]["vocab_size"], image_token)
    for k in range(K):
        ids[:, 1 + k * (N + 1) : 1 + k * (N + 1) + N] = image_token
    image_end = 1 + K * N + (K - 1)
    assert T > image_end + 1, f"--seq {T} leaves no text around {K} tile(s) of {N} image tokens"
    mask = torch.zeros(B, T, dtype=torch.long)
    mask[:, image_end:] = 1
    pixels = torch.randn(B * K, cfg["vision"]["num_channels"], S, S, generator=g)
    return ids, mask, pixels


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def now(self):
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def autocast(device, bf16):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def bench_train(model, loss_fn, frozen, B, T, warmup, reps, device, bf16):
    """loss_fn() → the batch's loss; `frozen`: the vision tower's parameters."""
    for p in frozen:
        p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
    timer, secs = Timer(device), []
    for i in range(warmup + reps):
        t0 = timer.now()
        with autocast(device, bf16):
            loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            secs.append(timer.now() - t0)
    return {"tokens": B * T, "seconds": secs, "loss": loss.item(),
            "trainable_params": sum(p.numel() for p in trainable)}


@torch.no_grad()
def bench_generate(model, cfg, prompt, new_tokens, warmup, reps, g, device, bf16):
    c = cfg["llm"]
    ids = random_ids(g, (1, prompt), c["vocab_size"], model.image_token_id).to(device)
    timer, prefill, decode = Timer(device), [], []
    for i in range(warmup + reps):
        shape = (1, prompt + new_tokens, c["num_key_value_heads"], c["head_dim"])
        dt = torch.bfloat16 if bf16 else torch.float32
        cache = [(torch.zeros(shape, device=device, dtype=dt), torch.zeros(shape, device=device, dtype=dt))
                 for _ in range(c["num_hidden_layers"])]
        with autocast(device, bf16):
            t0 = timer.now()
            h = model.hidden(model.embed_tokens(ids), cache, 0)
            nxt = model.logits(h[:, -1:]).argmax(-1)
            t1 = timer.now()
            pos = prompt
            for _ in range(new_tokens):
                h = model.hidden(model.embed_tokens(nxt), cache, pos)
                nxt = model.logits(h[:, -1:]).argmax(-1)
                pos += 1
            t2 = timer.now()
        if i >= warmup:
            prefill.append(t1 - t0)
            decode.append(t2 - t1)
    return {"prompt_tokens": prompt, "new_tokens": new_tokens, "prefill_seconds": prefill, "decode_seconds": decode}


def smolvlm_model(cfg):
    """transformers' SmolVLMForConditionalGeneration (Idefics3) of the config's sizes, random weights."""
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration
    c, v = cfg["llm"], cfg["vision"]
    image_token = c["vocab_size"] - 1
    config = SmolVLMConfig(
        vision_config=dict(hidden_size=v["hidden_size"], intermediate_size=v["intermediate_size"],
                           num_hidden_layers=v["num_hidden_layers"], num_attention_heads=v["num_attention_heads"],
                           num_channels=v["num_channels"], image_size=v["image_size"], patch_size=v["patch_size"],
                           hidden_act=v["hidden_act"], layer_norm_eps=v["layer_norm_eps"]),
        text_config=dict(model_type="llama", vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
                         intermediate_size=c["intermediate_size"], num_hidden_layers=c["num_hidden_layers"],
                         num_attention_heads=c["num_attention_heads"], num_key_value_heads=c["num_key_value_heads"],
                         head_dim=c["head_dim"], hidden_act="silu",
                         max_position_embeddings=c.get("max_position_embeddings", 8192),
                         rms_norm_eps=c["rms_norm_eps"],
                         rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
                         attention_bias=False, mlp_bias=False, tie_word_embeddings=c.get("tie_word_embeddings", True),
                         pad_token_id=0),
        scale_factor=cfg["projector"]["pixel_shuffle"], image_token_id=image_token,
        tie_word_embeddings=c.get("tie_word_embeddings", True), pad_token_id=0)
    model = SmolVLMForConditionalGeneration._from_config(config, attn_implementation="sdpa")
    return model, image_token


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", required=True, choices=["train", "generate"])
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--tiles", type=int, default=1, help="tiles per sample's image (one run of image tokens each)")
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--bf16", action="store_true", help="torch.autocast(device_type, dtype=torch.bfloat16)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    torch.manual_seed(1234)
    device = torch.device(a.device)
    cfg = read_config(a.config)
    g = torch.Generator().manual_seed(7)
    if cfg["vision"]["type"] == "smolvlm":
        out = run_smolvlm(cfg, a, device, g)
    else:
        model = MiniVLM(cfg, cfg["llm"]["vocab_size"] - 1)
        model.init_weights()
        model.to(device)
        if a.what == "train":
            ids, mask, pixels = (t.to(device) for t in train_batch(cfg, model.image_token_id, a.batch, a.seq, a.tiles, g))
            out = bench_train(model, lambda: model.loss(ids, mask, pixels), list(model.vision.parameters()),
                              a.batch, a.seq, a.warmup, a.reps, device, a.bf16)
        else:
            out = bench_generate(model, cfg, a.prompt, a.new_tokens, a.warmup, a.reps, g, device, a.bf16)
    out.update(what=a.what, threads=torch.get_num_threads(), device=str(device), bf16=a.bf16,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    if device.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


def run_smolvlm(cfg, a, device, g):
    model, image_token = smolvlm_model(cfg)
    model.to(device)
    if a.what == "train":
        model.train()
        ids, mask, pixels = train_batch(cfg, image_token, a.batch, a.seq, a.tiles, g)
        S = cfg["vision"]["image_size"]
        labels = ids.masked_fill(mask == 0, -100)  # transformers shifts the labels itself
        ids, labels = ids.to(device), labels.to(device)
        pixels = pixels.view(a.batch, a.tiles, -1, S, S).to(device)  # [B, tiles, C, S, S]
        return bench_train(model, lambda: model(input_ids=ids, pixel_values=pixels, labels=labels).loss,
                           list(model.model.vision_model.parameters()), a.batch, a.seq, a.warmup, a.reps,
                           device, a.bf16)
    from transformers import DynamicCache
    model.eval()
    ids = random_ids(g, (1, a.prompt), cfg["llm"]["vocab_size"], image_token).to(device)
    timer, prefill, decode = Timer(device), [], []
    with torch.no_grad(), autocast(device, a.bf16):
        for i in range(a.warmup + a.reps):
            cache = DynamicCache(config=model.config.text_config)
            t0 = timer.now()
            out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
            nxt = out.logits[:, -1:].argmax(-1)
            t1 = timer.now()
            for _ in range(a.new_tokens):
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                nxt = out.logits[:, -1:].argmax(-1)
            t2 = timer.now()
            if i >= a.warmup:
                prefill.append(t1 - t0)
                decode.append(t2 - t1)
    return {"prompt_tokens": a.prompt, "new_tokens": a.new_tokens, "prefill_seconds": prefill, "decode_seconds": decode}


if __name__ == "__main__":
    main()
