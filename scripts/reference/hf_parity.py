"""Cross-checks of model_ref against Hugging Face transformers (random weights, nothing downloaded).

- Vision: our `vision_encoder.vision_model.*` tensors are written, renamed to the Hugging Face CLIP
  checkpoint names `vision_model.*`, as a local checkpoint directory; transformers' CLIPVisionModel
  loads it (every tensor must be used and none missing) and its last_hidden_state[:, 1:] must equal
  our features. So the name mapping is checked against transformers' own checkpoint loader.
- Pixel shuffle: transformers' Idefics3Connector.pixel_shuffle (the SmolVLM connector) must give
  exactly our [dr][dc][d] order.
- LLM: transformers' LlamaForCausalLM (qk_norm off) or Qwen3ForCausalLM (qk_norm on) loaded strictly
  with our `model.*` / `lm_head.*` tensors, fed the same input embeddings; logits must agree.

transformers runs softmax (CLIP, Llama) and RMSNorm in float32 even for a float64 model, so the
float64 comparison is limited to about 1e-7; the thresholds below leave a margin over that.
"""

import os
import tempfile

import safetensors.torch
import torch
import transformers

from model_ref import clip_features, llm_logits, pixel_shuffle

CLIP_TOL = {torch.float64: 1e-5, torch.float32: 1e-4}
LLM_TOL = {torch.float64: 1e-5, torch.float32: 1e-4}


def _load_strict(model, state):
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise AssertionError(f"HF load: missing {missing}, unexpected {unexpected}")


def check_clip(W, cfg, pixel_values):
    """Returns {dtype: max abs diff}; raises if any exceeds CLIP_TOL."""
    v = cfg["vision"]
    hf_cfg = transformers.CLIPVisionConfig(
        hidden_size=v["hidden_size"],
        intermediate_size=v["intermediate_size"],
        num_hidden_layers=v["num_hidden_layers"],
        num_attention_heads=v["num_attention_heads"],
        num_channels=v["num_channels"],
        image_size=v["image_size"],
        patch_size=v["patch_size"],
        hidden_act=v["hidden_act"],
        layer_norm_eps=v["layer_norm_eps"],
        attention_dropout=0.0,
    )
    prefix = "vision_encoder."
    state = {n[len(prefix) :]: t.contiguous() for n, t in W.items() if n.startswith(prefix)}
    with tempfile.TemporaryDirectory() as tmp:
        hf_cfg.save_pretrained(tmp)
        safetensors.torch.save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        model, info = transformers.CLIPVisionModel.from_pretrained(
            tmp, output_loading_info=True, attn_implementation="eager", local_files_only=True
        )
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise AssertionError(f"transformers CLIPVisionModel load of our tensors: {problems}")
    model.eval()
    diffs = {}
    for dtype, tol in CLIP_TOL.items():
        model.to(dtype)
        ours_w = {n: t.to(dtype) for n, t in W.items() if n.startswith(prefix)}
        with torch.no_grad():
            theirs = model(pixel_values=pixel_values.to(dtype)).last_hidden_state[:, 1:]
            ours = clip_features(ours_w, cfg, pixel_values.to(dtype))
        diff = (theirs - ours).abs().max().item()
        diffs[str(dtype)] = diff
        if not diff < tol:
            raise AssertionError(f"CLIP vision tower vs transformers ({dtype}): max abs diff {diff} >= {tol}")
    return diffs


def check_pixel_shuffle(features, r):
    """features [n, G², D]; raises unless our pixel shuffle equals Idefics3's bit for bit."""
    theirs = transformers.models.idefics3.modeling_idefics3.Idefics3Connector.pixel_shuffle(None, features, r)
    if not torch.equal(theirs, pixel_shuffle(features, r)):
        raise AssertionError(f"pixel shuffle r={r} differs from transformers' Idefics3Connector.pixel_shuffle")


def check_llm(W, cfg, embeds):
    """embeds [B, T, H]; returns {dtype: max abs diff of logits}; raises if any exceeds LLM_TOL."""
    c = cfg["llm"]
    common = dict(
        vocab_size=c["vocab_size"],
        hidden_size=c["hidden_size"],
        intermediate_size=c["intermediate_size"],
        num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"],
        head_dim=c["head_dim"],
        rms_norm_eps=c["rms_norm_eps"],
        rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
        tie_word_embeddings=c["tie_word_embeddings"],
        max_position_embeddings=c["max_position_embeddings"],
        attention_bias=False,
        hidden_act="silu",
    )
    if c["qk_norm"]:
        hf_cfg, cls = transformers.Qwen3Config(**common), transformers.Qwen3ForCausalLM
    else:
        hf_cfg, cls = transformers.LlamaConfig(**common, mlp_bias=False), transformers.LlamaForCausalLM
    hf_cfg._attn_implementation = "eager"
    model = cls(hf_cfg).eval()
    state = {n: t for n, t in W.items() if n.startswith(("model.", "lm_head."))}
    if c["tie_word_embeddings"]:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    _load_strict(model, state)
    diffs = {}
    for dtype, tol in LLM_TOL.items():
        model.to(dtype)
        ours_w = {n: t.detach().to(dtype) for n, t in state.items()}
        x = embeds.detach().to(dtype)
        with torch.no_grad():
            theirs = model(inputs_embeds=x).logits
            ours = llm_logits(ours_w, cfg, x)
        diff = (theirs - ours).abs().max().item()
        diffs[str(dtype)] = diff
        if not diff < tol:
            raise AssertionError(f"LLM vs transformers {cls.__name__} ({dtype}): max abs logit diff {diff} >= {tol}")
    return diffs
