"""Writes tests/goldens/smolvlm/: tiny random SmolVLM releases saved by Hugging Face transformers itself
(SmolVLMForConditionalGeneration + SmolVLMProcessor, `save_pretrained`), the inputs and prompts they are
run on, and the ids and logits transformers computes for them.

    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/reference/make_smolvlm_goldens.py [--out DIR]

Needs torch, transformers, safetensors, tokenizers, pillow, numpy, torchvision (SmolVLM's video processor
is a torchvision one), av (PyAV: writes and decodes the test video) and num2words (SmolVLMProcessor).

Cases (one model directory each):
  tied_split      tie_word_embeddings true,  do_image_splitting true,  float32 weights
  untied_nosplit  separate lm_head,          do_image_splitting false, bfloat16 weights
(Sharded directories are tested on tests/fixtures/smolvlm-tiny by test_hf_smolvlm.)

The goldens of every case are computed from the directory as written, reloaded with from_pretrained
in float32 (so the bfloat16 case uses its stored values), with attn_implementation="eager".
A float64 run of the same weights checks that the float32 logits are far from float noise limits.
"""

import argparse
import copy
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GOLD_REL = "tests/goldens/smolvlm"
INPUTS_REL = GOLD_REL + "/inputs"
IMG = "tests/fixtures/images/"
K_COLS = 256
TILE = 64            # max_image_size.longest_edge == vision image_size
LONGEST = 192        # size.longest_edge
IMAGE_SEQ_LEN = 16   # (64/8)^2 / 2^2

# SmolVLM's chat template (SmolVLM-256M-Instruct) with the video branch and the string-content branch of
# transformers' SmolVLMProcessor DEFAULT_CHAT_TEMPLATE; it is that constant, verbatim.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'] is string %}{{': ' + message['content']}}{% else %}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}"
    "{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# Added tokens, in id order after the 6400 of data/tokenizer/tokenizer.json (SmolVLM's own order:
# <global-img>, the 36 row/col tokens, <fake_token_around_image>, <image>, then the rest).
SPECIAL_TOKENS = (["<global-img>"]
                  + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
                  + ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<video>"])

PROMPTS = [
    {"name": "chat_photo", "kind": "chat", "text": "Can you describe this image?",
     "images": [IMG + "image-01-golden-dog-balloons.jpg"], "videos": []},
    {"name": "chat_wide", "kind": "chat", "text": "What is in this picture?",
     "images": [INPUTS_REL + "/wide-300x90.png"], "videos": []},
    {"name": "chat_two_images", "kind": "chat", "text": "How do these two images differ?",
     "images": [INPUTS_REL + "/small-45x20.png", INPUTS_REL + "/tall-90x260.png"], "videos": []},
    {"name": "chat_text", "kind": "chat", "text": "Hello, who are you?", "images": [], "videos": []},
    {"name": "raw_image_mid", "kind": "raw", "text": "A photo: <image> What does it show?",
     "images": [INPUTS_REL + "/tall-90x260.png"], "videos": []},
    {"name": "raw_text", "kind": "raw", "text": "The quick brown fox jumps over the lazy dog.",
     "images": [], "videos": []},
    {"name": "chat_video", "kind": "chat", "text": "What happens in this video?",
     "images": [], "videos": [INPUTS_REL + "/clip-64x64-4s.mp4"]},
]

CASES = [
    {"name": "tied_split", "tie": True, "split": True, "dtype": torch.float32, "seed": 1},
    {"name": "untied_nosplit", "tie": False, "split": False, "dtype": torch.bfloat16, "seed": 2},
]
SHARDED = {"name": "sharded", "source": "untied_nosplit", "max_shard_size": "600KB"}


# ----------------------------------------------------------------------------------------------- inputs

def make_inputs(out_inputs):
    """Small derived images (PNG, lossless) and a 4 s 64x64 h264 clip, all deterministic."""
    os.makedirs(out_inputs, exist_ok=True)
    src = Image.open(os.path.join(REPO, IMG + "image-06-racecar-drift.jpg")).convert("RGB")
    src.crop((0, 200, 640, 392)).resize((300, 90), Image.Resampling.BICUBIC).save(
        os.path.join(out_inputs, "wide-300x90.png"), optimize=False)
    src = Image.open(os.path.join(REPO, IMG + "image-05-superhero-rooftop.jpg")).convert("RGB")
    src.crop((200, 0, 420, 640)).resize((90, 260), Image.Resampling.BICUBIC).save(
        os.path.join(out_inputs, "tall-90x260.png"), optimize=False)
    src = Image.open(os.path.join(REPO, IMG + "image-04-yellow-car.jpg")).convert("RGB")
    src.crop((0, 180, 640, 464)).resize((45, 20), Image.Resampling.BICUBIC).save(
        os.path.join(out_inputs, "small-45x20.png"), optimize=False)
    write_video(os.path.join(out_inputs, "clip-64x64-4s.mp4"))


def write_video(path, w=64, h=64, fps=4, seconds=4):
    import av
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    n = fps * seconds
    for i in range(n):
        t = i / n
        img = np.zeros((h, w, 3), np.float64)
        img[..., 0] = 40 + 180 * xx / (w - 1)
        img[..., 1] = 40 + 180 * yy / (h - 1)
        img[..., 2] = 60 + 150 * t
        cx, cy = 8 + (w - 16) * t, h / 2 + 10 * np.sin(2 * np.pi * t)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 7 ** 2
        img[disc] = [250, 240, 30]
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    container = av.open(path, mode="w", format="mp4", options={"fflags": "+bitexact"})
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.options = {"crf": "18", "preset": "veryslow", "threads": "1", "bframes": "0", "flags": "+bitexact"}
    for f in frames:
        for pkt in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
            container.mux(pkt)
    for pkt in stream.encode():
        container.mux(pkt)
    container.close()


def decode_video(path):
    """All frames (RGB uint8) and the metadata transformers' PyAV reader gives (read_video_pyav)."""
    from transformers.video_utils import load_video
    frames, meta = load_video(path, backend="pyav",
                              sample_indices_fn=lambda metadata, **kw: np.arange(metadata.total_num_frames))
    meta.frames_indices = None
    return frames, meta


# ------------------------------------------------------------------------------------- tokenizer/model

def build_tokenizer(tmp):
    from tokenizers import AddedToken, Tokenizer
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer.from_file(os.path.join(REPO, "data/tokenizer/tokenizer.json"))
    assert tok.get_vocab_size() == 6400
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<end_of_utterance>",
        pad_token="<|im_end|>", unk_token=None, chat_template=CHAT_TEMPLATE, model_max_length=8192,
        add_bos_token=False, add_eos_token=False,
        extra_special_tokens={"fake_image_token": "<fake_token_around_image>", "image_token": "<image>",
                              "end_of_utterance_token": "<end_of_utterance>", "global_image_token": "<global-img>",
                              "video_token": "<video>"})
    for i, t in enumerate(SPECIAL_TOKENS):
        assert hf.convert_tokens_to_ids(t) == 6400 + i, t
    return hf


def build_processor(tokenizer, split):
    from transformers import SmolVLMProcessor
    from transformers.image_utils import PILImageResampling
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil
    from transformers.models.smolvlm.video_processing_smolvlm import SmolVLMVideoProcessor
    ip = SmolVLMImageProcessorPil(
        do_convert_rgb=True, do_resize=True, size={"longest_edge": LONGEST}, resample=PILImageResampling.LANCZOS,
        do_image_splitting=split, max_image_size={"longest_edge": TILE}, do_rescale=True,
        rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
        do_pad=True)
    vp = SmolVLMVideoProcessor(
        do_convert_rgb=True, do_resize=True, size={"longest_edge": TILE}, resample=PILImageResampling.LANCZOS,
        max_image_size={"longest_edge": TILE}, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_pad=True, do_sample_frames=True,
        video_sampling={"fps": 1, "max_frames": 4, "video_size": {"longest_edge": TILE}})
    return SmolVLMProcessor(image_processor=ip, tokenizer=tokenizer, video_processor=vp,
                            image_seq_len=IMAGE_SEQ_LEN, chat_template=CHAT_TEMPLATE)


def build_model(case, tokenizer):
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration
    V = len(tokenizer)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<end_of_utterance>", "<|im_end|>", "<image>")}
    config = SmolVLMConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           num_channels=3, image_size=TILE, patch_size=8, hidden_act="gelu_pytorch_tanh",
                           layer_norm_eps=1e-6),
        text_config=dict(model_type="llama", vocab_size=V, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         hidden_act="silu", max_position_embeddings=8192, rms_norm_eps=1e-5,
                         rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
                         attention_bias=False, mlp_bias=False, tie_word_embeddings=case["tie"],
                         bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<end_of_utterance>"],
                         pad_token_id=ids["<|im_end|>"]),
        scale_factor=2, image_token_id=ids["<image>"], tie_word_embeddings=case["tie"],
        pad_token_id=ids["<|im_end|>"], bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<end_of_utterance>"])
    torch.manual_seed(case["seed"])
    model = SmolVLMForConditionalGeneration(config).eval()
    reinit(model, case["seed"])
    if case["tie"]:
        assert model.lm_head.weight.data_ptr() == model.model.text_model.embed_tokens.weight.data_ptr()
    else:
        assert model.lm_head.weight.data_ptr() != model.model.text_model.embed_tokens.weight.data_ptr()
    return model.to(case["dtype"])


@torch.no_grad()
def reinit(model, seed):
    """Non-degenerate weights: linears/conv N(0, 1/fan_in), embeddings N(0, 0.2^2), norms 1 + N(0, 0.1^2),
    biases N(0, 0.1^2). Drawn from one generator in module order, tied parameters once."""
    g = torch.Generator().manual_seed(1000 + seed)
    seen = set()

    def draw(p, std, mean=0.0):
        if p is None or id(p) in seen:
            return
        seen.add(id(p))
        p.copy_(mean + std * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))

    for name, m in model.named_modules():
        kind = type(m).__name__
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            fan_in = m.weight[0].numel()
            draw(m.weight, fan_in ** -0.5)
            draw(m.bias, 0.1)
        elif isinstance(m, torch.nn.Embedding):
            draw(m.weight, 0.2)
        elif isinstance(m, torch.nn.LayerNorm) or kind.endswith("RMSNorm"):
            draw(m.weight, 0.1, 1.0)
            draw(getattr(m, "bias", None), 0.1)
    missed = [n for n, p in model.named_parameters() if id(p) not in seen]
    assert not missed, missed


# ------------------------------------------------------------------------------------------- running

def render(processor, prompt):
    if prompt["kind"] == "raw":
        return prompt["text"]
    content = [{"type": "image"} for _ in prompt["images"]] + [{"type": "video"} for _ in prompt["videos"]]
    content.append({"type": "text", "text": prompt["text"]})
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                         tokenize=False)


def process(processor, prompt, repo=REPO):
    text = render(processor, prompt)
    kw = {}
    if prompt["images"]:
        kw["images"] = [[Image.open(os.path.join(repo, p)) for p in prompt["images"]]]
    frames = None
    if prompt["videos"]:
        assert len(prompt["videos"]) == 1
        frames, meta = decode_video(os.path.join(repo, prompt["videos"][0]))
        kw["videos"] = [frames]
        kw["video_metadata"] = [meta]
    enc = processor(text=[text], return_tensors="pt", **kw)
    return text, enc, frames


def real_tiles(enc):
    """pixel_values [1, N, 3, S, S] -> the non-padding tiles [n, 3, S, S] (padding tiles are all zeros)."""
    pv = enc["pixel_values"][0]
    keep = (pv == 0.0).flatten(1).sum(1) != pv[0].numel()
    return pv[keep]


@torch.no_grad()
def forward(model, enc, dtype):
    kw = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    if "pixel_values" in enc:
        kw["pixel_values"] = enc["pixel_values"].to(dtype)
        kw["pixel_attention_mask"] = enc["pixel_attention_mask"]
    return model(**kw).logits[0].to(torch.float64)


def load_processor(path):
    """AutoProcessor, with the PIL-backend image processor (Pillow's LANCZOS, the resize minivlm implements).
    With torchvision >= 0.27 installed AutoProcessor would pick the torchvision image processor, whose LANCZOS
    differs from Pillow's by 1/255 on ~0.5 % of the pixels. The video processor exists only for torchvision;
    the test video is 64x64 = the tile, so both of its resizes are the identity."""
    from transformers import AutoImageProcessor, AutoProcessor
    proc = AutoProcessor.from_pretrained(path)
    proc.image_processor = AutoImageProcessor.from_pretrained(path, backend="pil")
    assert type(proc.image_processor).__name__ == "SmolVLMImageProcessorPil"
    return proc


def load_dir(path, dtype=torch.float32):
    from transformers import SmolVLMForConditionalGeneration
    model, info = SmolVLMForConditionalGeneration.from_pretrained(
        path, dtype=dtype, attn_implementation="eager", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    assert not bad, f"{path}: loading info {bad}"
    return model.eval(), load_processor(path)


def expansion_summary(enc, frames, tok):
    ids = enc["input_ids"][0].tolist()
    rows, cols = enc.get("rows"), enc.get("cols")
    d = {"T": len(ids), "image_tokens": ids.count(tok.convert_tokens_to_ids("<image>"))}
    if "pixel_values" in enc:
        d["tiles"] = int(real_tiles(enc).shape[0])
    if rows is not None:
        d["rows"], d["cols"] = rows, cols
    if frames is not None:
        d["video_frames_decoded"] = int(frames.shape[0])
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, GOLD_REL))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    from safetensors.torch import save_file

    out = args.out
    os.makedirs(out, exist_ok=True)
    make_inputs(os.path.join(REPO, INPUTS_REL))
    with open(os.path.join(out, "prompts.json"), "w") as f:
        json.dump(PROMPTS, f, indent=1)
        f.write("\n")

    report = {}
    for case in CASES:
        cdir = os.path.join(out, case["name"])
        shutil.rmtree(cdir, ignore_errors=True)
        tok = build_tokenizer(cdir)
        proc = build_processor(tok, case["split"])
        model = build_model(case, tok)
        model.save_pretrained(cdir)
        proc.save_pretrained(cdir)

        model32, proc2 = load_dir(cdir, torch.float32)
        model64 = copy.deepcopy(model32).to(torch.float64)
        V = model32.config.text_config.vocab_size
        cols = torch.from_numpy(np.sort(np.random.RandomState(0).choice(V, K_COLS, replace=False))).long()
        tensors = {"logit_columns": cols}
        rep = {}
        for p in PROMPTS:
            text, enc, frames = process(proc2, p)
            text_b, enc_b, _ = process(proc, p)
            assert text == text_b and torch.equal(enc["input_ids"], enc_b["input_ids"]), p["name"]
            if "pixel_values" in enc:
                assert torch.equal(enc["pixel_values"], enc_b["pixel_values"]), p["name"]
            l32 = forward(model32, enc, torch.float32)
            l64 = forward(model64, enc, torch.float64)
            rel = ((l32 - l64).abs().max() / l64.abs().max()).item()
            assert rel < 1e-5, (p["name"], rel)
            n = p["name"]
            tensors[f"{n}.input_ids"] = enc["input_ids"][0].to(torch.int64).contiguous()
            # (pixel values are not stored: tests/goldens/image/smolvlm* hold the processor's tiles)
            if frames is not None:
                _, meta = decode_video(os.path.join(REPO, p["videos"][0]))
                idx = torch.as_tensor(proc2.video_processor.sample_frames(meta))  # what the processor sampled
                tensors[f"{n}.video_frame_indices"] = idx.to(torch.int64)
            l32f = l32.to(torch.float32)
            tensors[f"{n}.logits_last"] = l32f[-1].contiguous()
            tensors[f"{n}.logits_cols"] = l32f[:, cols].contiguous()
            s = expansion_summary(enc, frames, proc2.tokenizer)
            s["rel_f32_vs_f64"] = rel
            if p["images"]:
                info = proc2.image_processor([[Image.open(os.path.join(REPO, q)) for q in p["images"]]],
                                             return_row_col_info=True)
                s["rows_cols"] = list(zip(info["rows"][0], info["cols"][0]))
            if frames is not None:
                s["frame_indices"] = tensors[f"{n}.video_frame_indices"].tolist()
                s["text"] = text
            if "pixel_values" in enc:
                # the pixels must visibly matter: mirrored tiles move the last logits by > 1 %
                enc_f = dict(enc)
                enc_f["pixel_values"] = enc["pixel_values"].flip(-1)
                moved = ((forward(model32, enc_f, torch.float32)[-1] - l32[-1]).abs().max()
                         / l32[-1].abs().max()).item()
                assert moved > 1e-2, (n, moved)
                s["rel_change_mirrored_pixels"] = moved
            rep[n] = s
        save_file(tensors, os.path.join(cdir, "expected.safetensors"), metadata={"case": case["name"]})
        report[case["name"]] = rep

    # (sharded directories are tested on tests/fixtures/smolvlm-tiny, test_hf_smolvlm)
    shutil.rmtree(os.path.join(out, "sharded"), ignore_errors=True)
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
