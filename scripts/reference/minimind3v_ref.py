"""Reference implementation of the MiniMind-V (minimind-3v) forward pass, in PyTorch (CPU).

Written from the description in scripts/reference/README.md ("minimind-3v" section): a frozen SigLIP ViT
(transformers `SiglipVisionModel`, images through the Pillow-based `SiglipImageProcessorPil`), the projector
LayerNorm -> Linear -> GELU(erf) -> Linear, and the MiniMind-3 LLM (pre-norm, RMSNorm, q/k RMSNorm before
half-split RoPE, GQA, SwiGLU or MoE, tied head). The k-th maximal run of the image token in the ids is
replaced by image k's projected features.

    cfg = resolve_config(json.load(open("config.json")))
    model = MiniMind3V(cfg, load_pth("W.pth"), "siglip_dir", dtype=torch.float32)
    ids = render_prompt(tokenizer, "chat", "<image>\\nWhat is this?", cfg["image_token_len"], cfg["image_special_token"])
    logits = model(ids, pixel_values)          # [T, V]
"""

import math
import os

import torch
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENIZER_DIR = os.path.join(REPO_ROOT, "data", "tokenizer")


def resolve_config(raw):
    """MiniMindConfig + VLMConfig defaults for the keys that are absent."""
    g = lambda k, d: raw[k] if k in raw else d  # noqa: E731
    c = {}
    c["hidden_size"] = g("hidden_size", 768)
    c["num_hidden_layers"] = g("num_hidden_layers", 8)
    c["use_moe"] = bool(g("use_moe", False))
    c["vocab_size"] = g("vocab_size", 6400)
    c["num_attention_heads"] = g("num_attention_heads", 8)
    c["num_key_value_heads"] = g("num_key_value_heads", 4) or c["num_attention_heads"]
    c["head_dim"] = g("head_dim", c["hidden_size"] // c["num_attention_heads"])
    c["intermediate_size"] = g("intermediate_size", math.ceil(c["hidden_size"] * math.pi / 64) * 64)
    c["max_position_embeddings"] = g("max_position_embeddings", 32768)
    c["rms_norm_eps"] = g("rms_norm_eps", 1e-6)
    c["rope_theta"] = g("rope_theta", 1e6)
    c["tie_word_embeddings"] = bool(g("tie_word_embeddings", True))
    c["num_experts"] = g("num_experts", 4)
    c["num_experts_per_tok"] = g("num_experts_per_tok", 1)
    c["moe_intermediate_size"] = g("moe_intermediate_size", c["intermediate_size"])
    c["norm_topk_prob"] = bool(g("norm_topk_prob", True))
    c["router_aux_loss_coef"] = g("router_aux_loss_coef", 5e-4)
    c["image_special_token"] = g("image_special_token", "<|image_pad|>")
    c["image_ids"] = g("image_ids", [12])
    c["image_hidden_size"] = g("image_hidden_size", 768)
    c["image_token_len"] = g("image_token_len", 64)
    if g("inference_rope_scaling", False):
        raise ValueError("inference_rope_scaling (YaRN) is not implemented by this reference")
    return c


def load_pth(path):
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    return sd


# ---------------------------------------------------------------------------------------------
# building blocks (functional, weights in a dict)
# ---------------------------------------------------------------------------------------------

def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(head_dim, T, theta, dtype):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]  # [T, hd/2]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().to(dtype), ang.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x [T, heads, hd]; half-split rotation: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin)."""
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
    return x * cos[:, None, :] + rot * sin[:, None, :]


def swiglu(x, gate, up, down):
    return (F.silu(x @ gate.T) * (x @ up.T)) @ down.T


def moe_forward(x, router, experts, top_k, norm_topk_prob, aux_coef=0.0):
    """x [N, H]; router [E, H]; experts: list of (gate [I,H], up [I,H], down [H,I]).

    Returns y [N, H], aux loss (scalar), topk_idx [N, k]. Each token goes to its k highest-probability
    experts (ties broken towards the lower index); its output is the probability-weighted sum of their
    SwiGLU outputs, the weights renormalised to sum 1 (+1e-20 in the denominator) when norm_topk_prob.
    aux = E * coef * sum_e (number of tokens that chose e / N) * (mean probability of e); with top-k the
    counts sum to N*k.
    """
    E = router.shape[0]
    probs = torch.softmax(x @ router.T, dim=-1)
    w, idx = torch.topk(probs, top_k, dim=-1)  # sorted, descending
    if norm_topk_prob:
        w = w / (w.sum(-1, keepdim=True) + 1e-20)
    y = torch.zeros_like(x)
    for e in range(E):
        sel = idx == e  # [N, k]; a token chooses an expert at most once
        rows = sel.any(-1).nonzero().flatten()
        if rows.numel() == 0:
            continue
        we = (w * sel).sum(-1)[rows]
        g, u, d = experts[e]
        y = y.index_add(0, rows, swiglu(x[rows], g, u, d) * we[:, None])
    counts = torch.zeros(E, dtype=x.dtype)
    counts = counts.index_add(0, idx.flatten(), torch.ones(idx.numel(), dtype=x.dtype))
    aux = (counts / idx.shape[0] * probs.mean(0)).sum() * E * aux_coef
    return y, aux, idx


# ---------------------------------------------------------------------------------------------
# vision tower
# ---------------------------------------------------------------------------------------------

def load_processor(siglip_dir):
    """The Pillow/NumPy SigLIP processor (never the torchvision one)."""
    from transformers import SiglipImageProcessorPil
    p = SiglipImageProcessorPil.from_pretrained(siglip_dir)
    assert p.backend == "pil"
    return p


def load_images(paths, processor):
    """paths -> pixel_values float32 [n, 3, S, S] (or None when there is no image)."""
    from PIL import Image
    if not paths:
        return None
    ims = [Image.open(p).convert("RGB") for p in paths]
    pv = processor(images=ims, return_tensors="pt")["pixel_values"]
    assert pv.dtype == torch.float32
    return pv


def load_vision(siglip_dir, dtype):
    from transformers import SiglipVisionModel
    m = SiglipVisionModel.from_pretrained(siglip_dir, dtype=torch.float32, attn_implementation="eager")
    return m.to(dtype).eval()


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------

class MiniMind3V:
    def __init__(self, cfg, state_dict, siglip_dir, dtype=torch.float32):
        self.c, self.dtype = cfg, dtype
        self.w = {k: v.to(dtype) for k, v in state_dict.items() if not k.startswith("vision_encoder.")}
        if cfg["tie_word_embeddings"]:
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        self.vision = load_vision(siglip_dir, dtype) if siglip_dir else None

    def image_features(self, pixel_values):
        """[n, 3, S, S] -> projected features [n, N, H]."""
        w = self.w
        with torch.no_grad():
            f = self.vision(pixel_values=pixel_values.to(self.dtype)).last_hidden_state
        f = F.layer_norm(f, f.shape[-1:], w["vision_proj.mlp.0.weight"], w["vision_proj.mlp.0.bias"], 1e-5)
        f = F.gelu(f @ w["vision_proj.mlp.1.weight"].T + w["vision_proj.mlp.1.bias"])
        return f @ w["vision_proj.mlp.3.weight"].T + w["vision_proj.mlp.3.bias"]

    def embed(self, ids, pixel_values=None):
        h = self.w["model.embed_tokens.weight"][ids]
        if pixel_values is None or len(pixel_values) == 0:
            return h
        feats = self.image_features(pixel_values)
        marker, k, i, T = self.c["image_ids"][0], 0, 0, len(ids)
        ids = ids.tolist()
        h = h.clone()
        while i < T:
            if ids[i] != marker:
                i += 1
                continue
            s = i
            while i < T and ids[i] == marker:
                i += 1
            if k < len(feats):
                n = min(i - s, feats.shape[1])
                if n != i - s:
                    raise ValueError(f"image run of {i - s} tokens is longer than the {feats.shape[1]} features")
                h[s:i] = feats[k][:n]
                k += 1
        return h

    def __call__(self, ids, pixel_values=None, return_aux=False):
        """ids: LongTensor [T] -> logits [T, V] (and the MoE aux loss with return_aux)."""
        c, w = self.c, self.w
        T = ids.shape[0]
        nq, nkv, hd, eps = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["rms_norm_eps"]
        x = self.embed(ids, pixel_values)
        cos, sin = rope_tables(hd, T, c["rope_theta"], self.dtype)
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        aux_total = torch.zeros((), dtype=self.dtype)
        self.last_routing = []  # per MoE layer, the experts each token chose [T, k]
        for l in range(c["num_hidden_layers"]):
            p = f"model.layers.{l}."
            a = rms_norm(x, w[p + "input_layernorm.weight"], eps)
            q = (a @ w[p + "self_attn.q_proj.weight"].T).view(T, nq, hd)
            k = (a @ w[p + "self_attn.k_proj.weight"].T).view(T, nkv, hd)
            v = (a @ w[p + "self_attn.v_proj.weight"].T).view(T, nkv, hd)
            q = apply_rope(rms_norm(q, w[p + "self_attn.q_norm.weight"], eps), cos, sin)
            k = apply_rope(rms_norm(k, w[p + "self_attn.k_norm.weight"], eps), cos, sin)
            kv_of = torch.arange(nq) // (nq // nkv)  # query head h reads kv head h // n_rep
            k, v = k[:, kv_of], v[:, kv_of]
            s = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd)
            s = s.masked_fill(~causal, float("-inf"))
            o = torch.einsum("hts,shd->thd", torch.softmax(s, dim=-1), v).reshape(T, nq * hd)
            x = x + o @ w[p + "self_attn.o_proj.weight"].T
            m = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
            if c["use_moe"]:
                experts = [(w[p + f"mlp.experts.{e}.gate_proj.weight"], w[p + f"mlp.experts.{e}.up_proj.weight"],
                            w[p + f"mlp.experts.{e}.down_proj.weight"]) for e in range(c["num_experts"])]
                y, aux, idx = moe_forward(m, w[p + "mlp.gate.weight"], experts, c["num_experts_per_tok"],
                                        c["norm_topk_prob"], c["router_aux_loss_coef"])
                aux_total = aux_total + aux
                self.last_routing.append(idx)
            else:
                y = swiglu(m, w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"], w[p + "mlp.down_proj.weight"])
            x = x + y
        x = rms_norm(x, w["model.norm.weight"], eps)
        logits = x @ w["lm_head.weight"].T
        return (logits, aux_total) if return_aux else logits


# ---------------------------------------------------------------------------------------------
# prompts
# ---------------------------------------------------------------------------------------------

def load_tokenizer(tok_dir=TOKENIZER_DIR):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tok_dir)


def render_prompt(tokenizer, kind, text, image_token_len, image_token="<|image_pad|>"):
    """chat: one user turn (text already holds its '<image>\\n' prefixes), generation prompt added;
    raw: the text itself. Each '<image>' becomes image_token_len image tokens. -> LongTensor [T]."""
    content = text.replace("<image>", image_token * image_token_len)
    if kind == "chat":
        s = tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                          add_generation_prompt=True)
    elif kind == "raw":
        s = content
    else:
        raise ValueError(kind)
    return torch.tensor(tokenizer(s, add_special_tokens=False)["input_ids"], dtype=torch.long)


# ---------------------------------------------------------------------------------------------
# safetensors output with a fixed header (safetensors.torch.save_file orders __metadata__ at random)
# ---------------------------------------------------------------------------------------------

_ST_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}


def save_safetensors(path, tensors, metadata):
    """tensors: name -> tensor, written in this order; metadata: str -> str, written sorted."""
    import json
    import struct
    header, blobs, offset = {"__metadata__": {k: metadata[k] for k in sorted(metadata)}}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb)
        for b in blobs:
            f.write(b)
