#!/usr/bin/env python3
"""Converts a MiniMind-V (minimind-3v) release into a minivlm model directory.

    python3 scripts/convert_minimind_v.py --weights sft_vlm_768.pth --vision siglip2-base-p32-256-ve \\
        [--config config.json] [--tokenizer data/tokenizer] --out models/minimind-3v [--force]

Inputs:
  --weights    the .pth MiniMind-V saves (`torch.save({k: v.half() ...})`: LLM + `vision_proj.*`, no
               `vision_encoder.*`); a resume checkpoint {"model": state_dict} is accepted too.
  --vision     the SigLIP folder (config.json, model.safetensors, preprocessor_config.json) of a
               `SiglipVisionModel` (or a full `SiglipModel`: only its `vision_model.*` tensors are taken).
  --config     MiniMind-V's own config.json (VLMConfig fields); without it, minimind-3v's released sizes
               (768 hidden, 8 layers, 8/4 heads, vocab 6400) with use_moe / num_experts read off the
               weight names.
  --tokenizer  folder with tokenizer.json + tokenizer_config.json (default: the repository's
               data/tokenizer/).

Output: config.json, model.safetensors (source dtypes, bytes copied), tokenizer.json,
tokenizer_config.json; written to OUT.tmp and renamed to OUT.

Uses only the Python standard library: the .pth zip is read with a restricted unpickler, so torch
is not needed.
"""

import argparse
import collections
import json
import math
import os
import pickle
import shutil
import struct
import sys
import zipfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------------------------------------
# .pth reading (torch's zip format) without torch
# ---------------------------------------------------------------------------------------------

# storage class -> (safetensors dtype, item size)
_STORAGE_DTYPES = {
    "HalfStorage": ("F16", 2), "FloatStorage": ("F32", 4), "BFloat16Storage": ("BF16", 2),
    "DoubleStorage": ("F64", 8), "LongStorage": ("I64", 8), "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2), "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1),
}
FLOAT_DTYPES = ("F16", "BF16", "F32")
_ITEMSIZE = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U8": 1, "BOOL": 1}


class ConversionError(Exception):
    pass


class _StorageType:
    def __init__(self, name):
        if name not in _STORAGE_DTYPES:
            raise ConversionError(f"unsupported storage type torch.{name}")
        self.name = name
        self.dtype, self.itemsize = _STORAGE_DTYPES[name]


class _Storage:
    def __init__(self, key, stype, numel):
        self.key, self.dtype, self.itemsize, self.numel = key, stype.dtype, stype.itemsize, numel


class PthTensor:
    """A tensor of a .pth file: a view (offset, shape, stride) of a storage inside the zip."""

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)
        self.dtype = storage.dtype
        self.name = None

    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def is_contiguous(self):
        expected = 1
        for d, s in zip(reversed(self.shape), reversed(self.stride)):
            if d != 1 and s != expected:
                return False
            expected *= d
        return True


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return PthTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


def _rebuild_parameter_with_state(data, requires_grad=False, backward_hooks=None, state=None):
    return data


class _PthUnpickler(pickle.Unpickler):
    _GLOBALS = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }

    def find_class(self, module, name):
        if (module, name) in self._GLOBALS:
            return self._GLOBALS[(module, name)]
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise ConversionError(f"the .pth file needs {module}.{name}, which this reader does not support "
                              f"(only plain tensor state dicts are)")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage":
            raise ConversionError(f"unsupported persistent id in the .pth file: {pid!r}")
        _, stype, key, _location, numel = pid
        if not isinstance(stype, _StorageType):
            raise ConversionError(f"unsupported storage type {stype!r}")
        return _Storage(str(key), stype, numel)


class PthFile:
    """A state dict of a torch.save zip: name -> PthTensor; read(t) gives its bytes."""

    def __init__(self, path):
        if not zipfile.is_zipfile(path):
            raise ConversionError(f"{path}: not a torch zip archive (the legacy pre-1.6 format is not "
                                  f"supported; re-save it with torch.save)")
        self.zip = zipfile.ZipFile(path)
        pkls = [n for n in self.zip.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pkls) != 1:
            raise ConversionError(f"{path}: expected one data.pkl in the archive, found {pkls}")
        self.prefix = pkls[0][: -len("data.pkl")]
        bo = self.prefix + "byteorder"
        if bo in self.zip.namelist() and self.zip.read(bo).strip() != b"little":
            raise ConversionError(f"{path}: big-endian archives are not supported")
        obj = _PthUnpickler(self.zip.open(pkls[0])).load()
        if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
            obj = obj["model"]
        if not isinstance(obj, dict):
            raise ConversionError(f"{path}: the pickle holds a {type(obj).__name__}, not a state dict")
        self.tensors = collections.OrderedDict()
        for k, v in obj.items():
            if isinstance(v, PthTensor):
                v.name = k
                self.tensors[k] = v
        self._cache = {}

    def _storage_bytes(self, st):
        if st.key not in self._cache:
            self._cache = {st.key: self.zip.read(f"{self.prefix}data/{st.key}")}
        return self._cache[st.key]

    def read(self, t):
        if not t.is_contiguous():
            raise ConversionError(f"tensor {t.name} is not contiguous (shape {list(t.shape)}, stride "
                                  f"{list(t.stride)}); save it with .contiguous()")
        data = self._storage_bytes(t.storage)
        start, n = t.offset * t.storage.itemsize, t.numel() * t.storage.itemsize
        if start + n > len(data):
            raise ConversionError(f"tensor {t.name}: storage {t.storage.key} is too short")
        return data[start:start + n]


# ---------------------------------------------------------------------------------------------
# safetensors reading / writing
# ---------------------------------------------------------------------------------------------

class StTensor:
    def __init__(self, path, name, dtype, shape, begin, end):
        self.path, self.name, self.dtype, self.shape, self.begin, self.end = path, name, dtype, tuple(shape), begin, end

    def read(self):
        with open(self.path, "rb") as f:
            f.seek(self.begin)
            return f.read(self.end - self.begin)


def read_safetensors_header(path):
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ConversionError(f"{path}: not a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        header = json.loads(f.read(n))
    base = 8 + n
    out = collections.OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = StTensor(path, name, info["dtype"], info["shape"], base + b, base + e)
    return out


def write_safetensors(path, entries, metadata):
    """entries: list of (name, dtype, shape, nbytes, read_fn)."""
    header, offset = {"__metadata__": metadata}, 0
    for name, dtype, shape, nbytes, _ in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name, _, _, nbytes, read_fn in entries:
            data = read_fn()
            if len(data) != nbytes:
                raise ConversionError(f"{name}: read {len(data)} bytes, expected {nbytes}")
            f.write(data)


# ---------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------

# keys of MiniMind-V's config.json that carry no information for minivlm
_IGNORED_CONFIG_KEYS = {
    "architectures", "auto_map", "transformers_version", "dtype", "torch_dtype", "model_type", "_name_or_path",
    "bos_token_id", "eos_token_id", "pad_token_id", "dropout", "flash_attn", "max_seq_len", "use_cache",
    "return_dict", "output_hidden_states", "output_attentions", "chunk_size_feed_forward", "is_encoder_decoder",
    "id2label", "label2id", "problem_type", "tokenizer_class", "task_specific_params", "add_cross_attention",
    "tie_encoder_decoder", "is_decoder", "cross_attention_hidden_size", "finetuning_task", "prefix",
    "sep_token_id", "decoder_start_token_id", "pruned_heads", "torchscript", "use_bfloat16", "tf_legacy_loss",
    "output_scores", "return_dict_in_generate", "rope_scaling", "hidden_act",
}

MINIMIND_3V_RELEASE = {"hidden_size": 768, "num_hidden_layers": 8, "num_attention_heads": 8,
                       "num_key_value_heads": 4, "vocab_size": 6400, "image_hidden_size": 768,
                       "image_token_len": 64}


def resolve_minimind_config(raw):
    """MiniMindConfig / VLMConfig defaults applied to the keys present, as their __init__ does."""
    c = dict(raw)
    g = lambda k, d: c[k] if k in c else d  # noqa: E731  (kwargs.get semantics: a present null stays null)
    r = {}
    r["hidden_size"] = g("hidden_size", 768)
    r["num_hidden_layers"] = g("num_hidden_layers", 8)
    r["use_moe"] = bool(g("use_moe", False))
    r["vocab_size"] = g("vocab_size", 6400)
    r["num_attention_heads"] = g("num_attention_heads", 8)
    r["num_key_value_heads"] = g("num_key_value_heads", 4)
    if r["num_key_value_heads"] is None:
        r["num_key_value_heads"] = r["num_attention_heads"]
    r["head_dim"] = g("head_dim", r["hidden_size"] // r["num_attention_heads"])
    r["hidden_act"] = g("hidden_act", "silu")
    r["intermediate_size"] = g("intermediate_size", math.ceil(r["hidden_size"] * math.pi / 64) * 64)
    r["max_position_embeddings"] = g("max_position_embeddings", 32768)
    r["rms_norm_eps"] = g("rms_norm_eps", 1e-6)
    r["rope_theta"] = g("rope_theta", 1e6)
    r["tie_word_embeddings"] = bool(g("tie_word_embeddings", True))
    r["inference_rope_scaling"] = g("inference_rope_scaling", False)
    r["num_experts"] = g("num_experts", 4)
    r["num_experts_per_tok"] = g("num_experts_per_tok", 1)
    r["moe_intermediate_size"] = g("moe_intermediate_size", r["intermediate_size"])
    r["norm_topk_prob"] = bool(g("norm_topk_prob", True))
    r["router_aux_loss_coef"] = g("router_aux_loss_coef", 5e-4)
    r["image_special_token"] = g("image_special_token", "<|image_pad|>")
    r["image_ids"] = g("image_ids", [12])
    r["image_hidden_size"] = g("image_hidden_size", 768)
    r["image_token_len"] = g("image_token_len", 64)
    return r


def load_minimind_config(path, weight_names):
    notes = []
    if path is None:
        raw = dict(MINIMIND_3V_RELEASE)
        experts = {n.split(".")[5] for n in weight_names if ".mlp.experts." in n}
        if experts:
            raw["use_moe"] = True
            raw["num_experts"] = len(experts)
        notes.append("no --config: minimind-3v release sizes, " +
                     (f"MoE with {len(experts)} experts (from the weight names)" if experts else "dense"))
    else:
        with open(path) as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            raise ConversionError(f"{path}: not a JSON object")
        if "llm_config" in raw or "llm" in raw:
            raise ConversionError(f"{path}: this is not a MiniMind-V config.json (VLMConfig fields expected)")
    known = set(resolve_minimind_config({}).keys()) | {"rope_scaling", "rope_parameters"}
    unknown = sorted(k for k in raw if k not in known and k not in _IGNORED_CONFIG_KEYS)
    if unknown:
        notes.append(f"ignored config keys: {', '.join(unknown)}")
    c = resolve_minimind_config(raw)
    if c["inference_rope_scaling"]:
        raise ConversionError("inference_rope_scaling is true: YaRN RoPE scaling is not supported by minivlm; "
                              "convert with inference_rope_scaling false")
    for k in ("rope_scaling", "rope_parameters"):  # transformers 5 renames rope_scaling to rope_parameters
        rp = raw.get(k)
        if rp not in (None, {}) and not (isinstance(rp, dict) and rp.get("rope_type", rp.get("type")) == "default"):
            raise ConversionError(f"{k} {raw[k]!r} is not supported (plain RoPE only)")
    if c["hidden_act"] != "silu":
        raise ConversionError(f"hidden_act {c['hidden_act']!r}: only silu is supported")
    for k in ("hidden_size", "num_hidden_layers", "vocab_size", "num_attention_heads", "num_key_value_heads",
              "head_dim", "intermediate_size", "max_position_embeddings", "image_hidden_size", "image_token_len"):
        if not isinstance(c[k], int) or isinstance(c[k], bool) or c[k] <= 0:
            raise ConversionError(f"config {k} = {c[k]!r}: a positive integer is expected")
    if c["num_attention_heads"] % c["num_key_value_heads"]:
        raise ConversionError(f"num_attention_heads {c['num_attention_heads']} is not a multiple of "
                              f"num_key_value_heads {c['num_key_value_heads']}")
    if c["head_dim"] % 2:
        raise ConversionError(f"head_dim {c['head_dim']} is odd (RoPE needs an even head_dim)")
    if c["use_moe"]:
        if not (1 <= c["num_experts_per_tok"] <= c["num_experts"]):
            raise ConversionError(f"num_experts_per_tok {c['num_experts_per_tok']} not in [1, num_experts "
                                  f"{c['num_experts']}]")
    return c, notes


def load_siglip(vision_dir):
    def read_json(name):
        p = os.path.join(vision_dir, name)
        if not os.path.exists(p):
            raise ConversionError(f"{vision_dir}: {name} is missing")
        with open(p) as f:
            return json.load(f)

    cfg = read_json("config.json")
    notes = []
    mt = cfg.get("model_type")
    if mt == "siglip":
        vc = cfg.get("vision_config") or {}
    elif mt == "siglip_vision_model":
        vc = cfg
    elif mt is None and isinstance(cfg.get("vision_config"), dict):
        vc = cfg["vision_config"]
    else:
        raise ConversionError(f"{vision_dir}/config.json: model_type {mt!r} (expected siglip_vision_model or "
                              f"siglip; SigLIP2 NaFlex towers are not supported)")
    if "vision_config" in cfg and vc.get("model_type", "siglip_vision_model") != "siglip_vision_model":
        raise ConversionError(f"vision_config.model_type {vc.get('model_type')!r} is not siglip_vision_model")
    defaults = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                "num_channels": 3, "image_size": 224, "patch_size": 16, "hidden_act": "gelu_pytorch_tanh",
                "layer_norm_eps": 1e-6}
    v = {k: vc.get(k, d) for k, d in defaults.items()}
    if v["hidden_act"] != "gelu_pytorch_tanh":
        raise ConversionError(f"SigLIP hidden_act {v['hidden_act']!r}: only gelu_pytorch_tanh is supported")
    for k in ("image_size", "patch_size"):
        if not isinstance(v[k], int):
            raise ConversionError(f"SigLIP {k} {v[k]!r}: a single integer is expected")
    if v["image_size"] % v["patch_size"]:
        raise ConversionError(f"SigLIP image_size {v['image_size']} is not a multiple of patch_size {v['patch_size']}")
    if v["hidden_size"] % v["num_attention_heads"]:
        raise ConversionError("SigLIP hidden_size is not a multiple of num_attention_heads")

    pp = read_json("preprocessor_config.json")
    for k in ("do_resize", "do_rescale", "do_normalize"):
        if not pp.get(k, True):
            raise ConversionError(f"preprocessor_config.json: {k} is false; only resize + rescale + normalize "
                                  f"is supported")
    if pp.get("do_center_crop"):
        raise ConversionError("preprocessor_config.json: do_center_crop is not supported")
    if pp.get("do_pad"):
        raise ConversionError("preprocessor_config.json: do_pad is not supported")
    rf = pp.get("rescale_factor", 1 / 255)
    if abs(rf - 1 / 255) > 1e-12:
        raise ConversionError(f"preprocessor_config.json: rescale_factor {rf} (only 1/255 is supported)")
    size = pp.get("size", {"height": 224, "width": 224})
    if not isinstance(size, dict) or "height" not in size or "width" not in size:
        raise ConversionError(f"preprocessor_config.json: size {size!r} (expected {{height, width}})")
    if size["height"] != size["width"]:
        raise ConversionError(f"preprocessor_config.json: size {size['height']}x{size['width']} is not square")
    if size["height"] != v["image_size"]:
        raise ConversionError(f"preprocessor size {size['height']} != SigLIP image_size {v['image_size']}")
    resample = pp.get("resample", 3)
    resample_names = {2: "bilinear", 3: "bicubic"}
    if resample not in resample_names:
        raise ConversionError(f"preprocessor_config.json: resample {resample!r} (only 2 = bilinear and "
                              f"3 = bicubic are supported)")
    mean, std = pp.get("image_mean", [0.5] * 3), pp.get("image_std", [0.5] * 3)
    if isinstance(mean, (int, float)):
        mean = [mean] * 3
    if isinstance(std, (int, float)):
        std = [std] * 3
    if len(mean) != 3 or len(std) != 3 or any(s == 0 for s in std):
        raise ConversionError(f"preprocessor_config.json: image_mean {mean} / image_std {std}")

    vision = {"type": "siglip", "image_size": v["image_size"], "patch_size": v["patch_size"],
              "num_channels": v["num_channels"], "hidden_size": v["hidden_size"],
              "num_hidden_layers": v["num_hidden_layers"], "num_attention_heads": v["num_attention_heads"],
              "intermediate_size": v["intermediate_size"], "layer_norm_eps": v["layer_norm_eps"],
              "hidden_act": v["hidden_act"], "image_mean": [float(x) for x in mean],
              "image_std": [float(x) for x in std], "resample": resample_names[resample]}

    st_path = os.path.join(vision_dir, "model.safetensors")
    index_path = os.path.join(vision_dir, "model.safetensors.index.json")
    tensors = collections.OrderedDict()
    if os.path.exists(st_path):
        tensors.update(read_safetensors_header(st_path))
    elif os.path.exists(index_path):
        with open(index_path) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        for s in shards:
            tensors.update(read_safetensors_header(os.path.join(vision_dir, s)))
    else:
        raise ConversionError(f"{vision_dir}: model.safetensors is missing (.bin checkpoints are not supported)")
    if tensors and not any(n.startswith(("vision_model.", "text_model.")) for n in tensors):
        # transformers >= 5 saves a SiglipVisionModel without the vision_model. prefix
        tensors = collections.OrderedDict(("vision_model." + n, t) for n, t in tensors.items())
        notes.append("SigLIP tensor names without the vision_model. prefix (transformers 5 layout)")
    if any(n.startswith("text_model.") for n in tensors):
        notes.append("full SigLIP model: only its vision_model.* tensors are taken")
    return vision, tensors, notes


def tokenizer_image_id(tok_dir, token):
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    ids = [t["id"] for t in tok.get("added_tokens", []) if t.get("content") == token]
    if not ids:
        vocab = tok.get("model", {}).get("vocab", {})
        if isinstance(vocab, dict) and token in vocab:
            ids = [vocab[token]]
    if not ids:
        raise ConversionError(f"{tok_dir}/tokenizer.json has no token {token!r}")
    max_id = max([t["id"] for t in tok.get("added_tokens", [])] +
                 list((tok.get("model", {}).get("vocab") or {}).values()))
    return ids[0], max_id


# ---------------------------------------------------------------------------------------------
# expected tensors
# ---------------------------------------------------------------------------------------------

def expected_llm(c):
    H, V, hd = c["hidden_size"], c["vocab_size"], c["head_dim"]
    nq, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    e = collections.OrderedDict()
    e["model.embed_tokens.weight"] = (V, H)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        e[p + "self_attn.q_proj.weight"] = (nq * hd, H)
        e[p + "self_attn.k_proj.weight"] = (nkv * hd, H)
        e[p + "self_attn.v_proj.weight"] = (nkv * hd, H)
        e[p + "self_attn.o_proj.weight"] = (H, nq * hd)
        e[p + "self_attn.q_norm.weight"] = (hd,)
        e[p + "self_attn.k_norm.weight"] = (hd,)
        e[p + "input_layernorm.weight"] = (H,)
        e[p + "post_attention_layernorm.weight"] = (H,)
        if c["use_moe"]:
            I = c["moe_intermediate_size"]
            e[p + "mlp.gate.weight"] = (c["num_experts"], H)
            for x in range(c["num_experts"]):
                e[p + f"mlp.experts.{x}.gate_proj.weight"] = (I, H)
                e[p + f"mlp.experts.{x}.up_proj.weight"] = (I, H)
                e[p + f"mlp.experts.{x}.down_proj.weight"] = (H, I)
        else:
            I = c["intermediate_size"]
            e[p + "mlp.gate_proj.weight"] = (I, H)
            e[p + "mlp.up_proj.weight"] = (I, H)
            e[p + "mlp.down_proj.weight"] = (H, I)
    e["model.norm.weight"] = (H,)
    e["lm_head.weight"] = (V, H)
    D = c["image_hidden_size"]
    e["vision_proj.mlp.0.weight"] = (D,)
    e["vision_proj.mlp.0.bias"] = (D,)
    e["vision_proj.mlp.1.weight"] = (H, D)
    e["vision_proj.mlp.1.bias"] = (H,)
    e["vision_proj.mlp.3.weight"] = (H, H)
    e["vision_proj.mlp.3.bias"] = (H,)
    return e


def expected_vision(v):
    D, I, C, P = v["hidden_size"], v["intermediate_size"], v["num_channels"], v["patch_size"]
    n = (v["image_size"] // P) ** 2
    e = collections.OrderedDict()
    p = "vision_model."
    e[p + "embeddings.patch_embedding.weight"] = (D, C, P, P)
    e[p + "embeddings.patch_embedding.bias"] = (D,)
    e[p + "embeddings.position_embedding.weight"] = (n, D)
    for i in range(v["num_hidden_layers"]):
        q = f"{p}encoder.layers.{i}."
        for m in ("layer_norm1", "layer_norm2"):
            e[q + m + ".weight"] = (D,)
            e[q + m + ".bias"] = (D,)
        for m in ("q_proj", "k_proj", "v_proj", "out_proj"):
            e[q + f"self_attn.{m}.weight"] = (D, D)
            e[q + f"self_attn.{m}.bias"] = (D,)
        e[q + "mlp.fc1.weight"] = (I, D)
        e[q + "mlp.fc1.bias"] = (I,)
        e[q + "mlp.fc2.weight"] = (D, I)
        e[q + "mlp.fc2.bias"] = (D,)
    e[p + "post_layernorm.weight"] = (D,)
    e[p + "post_layernorm.bias"] = (D,)
    return e


def check_tensors(kind, found, expected, problems, optional=()):
    for name, shape in expected.items():
        t = found.get(name)
        if t is None:
            if name not in optional:
                problems.append(f"{kind}: missing tensor {name} (expected shape {list(shape)})")
        elif tuple(t.shape) != tuple(shape):
            problems.append(f"{kind}: tensor {name} has shape {list(t.shape)}, expected {list(shape)}")
        elif t.dtype not in FLOAT_DTYPES:
            problems.append(f"{kind}: tensor {name} has dtype {t.dtype} (expected F16, BF16 or F32)")


def convert(args):
    notes = []
    pth = PthFile(args.weights)
    names = list(pth.tensors)
    c, n = load_minimind_config(args.config, names)
    notes += n
    vision, vtensors, n = load_siglip(args.vision)
    notes += n
    tok_dir = args.tokenizer or os.path.join(REPO_ROOT, "data", "tokenizer")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if not os.path.exists(os.path.join(tok_dir, f)):
            raise ConversionError(f"{tok_dir}: {f} is missing")

    problems = []
    # consistency of the VLM config with the vision tower and the tokenizer
    if c["image_hidden_size"] != vision["hidden_size"]:
        problems.append(f"config image_hidden_size {c['image_hidden_size']} != SigLIP hidden_size "
                        f"{vision['hidden_size']}")
    n_patches = (vision["image_size"] // vision["patch_size"]) ** 2
    if c["image_token_len"] != n_patches:
        problems.append(f"config image_token_len {c['image_token_len']} != SigLIP patches "
                        f"({vision['image_size']}/{vision['patch_size']})^2 = {n_patches}")
    img_id, max_id = tokenizer_image_id(tok_dir, c["image_special_token"])
    if list(c["image_ids"]) != [img_id]:
        problems.append(f"config image_ids {c['image_ids']} != [{img_id}] (the id of "
                        f"{c['image_special_token']!r} in {tok_dir}/tokenizer.json)")
    if max_id >= c["vocab_size"]:
        problems.append(f"the tokenizer has ids up to {max_id}, beyond vocab_size {c['vocab_size']}")

    # LLM + projector tensors
    exp = expected_llm(c)
    found, ignored = {}, []
    for name, t in pth.tensors.items():
        if name.startswith("vision_encoder.") or name.endswith("freqs_cos") or name.endswith("freqs_sin"):
            ignored.append(name)
        elif name in exp:
            found[name] = t
        else:
            problems.append(f"weights: unexpected tensor {name} (shape {list(t.shape)})")
    if ignored:
        notes.append(f"ignored {len(ignored)} tensors of the .pth ({ignored[0]} ...): the vision tower comes "
                     f"from --vision")
    check_tensors("weights", found, exp, problems, optional=("lm_head.weight",) if c["tie_word_embeddings"] else ())
    for name, t in found.items():
        if not t.is_contiguous():
            problems.append(f"weights: tensor {name} is not contiguous (shape {list(t.shape)}, stride "
                            f"{list(t.stride)})")

    # vision tensors
    vexp = expected_vision(vision)
    vfound, vdropped = {}, []
    for name, t in vtensors.items():
        if name.startswith("vision_model.head.") or name.startswith("text_model.") or name in ("logit_scale",
                                                                                                 "logit_bias"):
            vdropped.append(name)
        elif name in vexp:
            vfound[name] = t
        else:
            problems.append(f"vision: unexpected tensor {name} (shape {list(t.shape)})")
    check_tensors("vision", vfound, vexp, problems)

    if not problems and c["tie_word_embeddings"] and "lm_head.weight" in found:
        if found["lm_head.weight"].dtype != found["model.embed_tokens.weight"].dtype or \
                pth.read(found["lm_head.weight"]) != pth.read(found["model.embed_tokens.weight"]):
            problems.append("tie_word_embeddings is true but lm_head.weight differs from "
                            "model.embed_tokens.weight")
    if problems:
        raise ConversionError("the inputs do not match:\n  " + "\n  ".join(problems))

    entries = []
    for name in exp:
        if name == "lm_head.weight" and c["tie_word_embeddings"]:
            continue
        t = found[name]
        entries.append((name, t.dtype, t.shape, t.numel() * _ITEMSIZE[t.dtype], (lambda t=t: pth.read(t))))
    for name in vexp:
        t = vfound[name]
        entries.append(("vision_encoder." + name, t.dtype, t.shape, t.end - t.begin, t.read))

    config = {
        "model_type": "minivlm",
        "llm": {k: c[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                  "num_key_value_heads", "head_dim", "intermediate_size", "rope_theta",
                                  "rms_norm_eps")},
        "vision": vision,
        "projector": {"type": "mlp", "pixel_shuffle": 1, "bias": True, "layer_norm_eps": 1e-5},
        "image_token": c["image_special_token"],
    }
    config["llm"]["qk_norm"] = True
    for k in ("tie_word_embeddings", "max_position_embeddings", "use_moe", "num_experts", "num_experts_per_tok",
              "moe_intermediate_size", "norm_topk_prob", "router_aux_loss_coef"):
        config["llm"][k] = c[k]

    out = os.path.abspath(args.out)
    if os.path.isdir(out) and os.listdir(out) and not args.force:
        raise ConversionError(f"{out} exists and is not empty (use --force to replace it)")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConversionError(f"{out} exists and is not a directory")
    tmp = out + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    try:
        write_safetensors(os.path.join(tmp, "model.safetensors"), entries,
                          {"format": "pt", "source": "convert_minimind_v.py"})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        for fn in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(os.path.join(tok_dir, fn), os.path.join(tmp, fn))
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    numel = lambda shape: math.prod(shape)  # noqa: E731
    llm_params = sum(numel(e[2]) for e in entries if e[0].startswith(("model.", "lm_head.")))
    proj_params = sum(numel(e[2]) for e in entries if e[0].startswith("vision_proj."))
    vis_params = sum(numel(e[2]) for e in entries if e[0].startswith("vision_encoder."))
    kind = (f"MoE {c['num_experts']} experts top-{c['num_experts_per_tok']}" if c["use_moe"] else "dense")
    dtypes = sorted({e[1] for e in entries})
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {args.out}: {len(entries)} tensors ({'/'.join(dtypes)}), "
          f"{(llm_params + proj_params + vis_params) / 1e6:.3f}M params (LLM {llm_params / 1e6:.3f}M, "
          f"projector {proj_params / 1e6:.3f}M, vision {vis_params / 1e6:.3f}M), {kind}, "
          f"{c['hidden_size']}x{c['num_hidden_layers']}, image {vision['image_size']}px "
          f"{c['image_token_len']} tokens ({vision['resample']}); dropped {len(vdropped)} vision tensors "
          f"(pooling head{', text model' if any(n.startswith('text_model.') for n in vdropped) else ''})"
          f"{', lm_head.weight (tied)' if c['tie_word_embeddings'] and 'lm_head.weight' in found else ''}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="MiniMind-V .pth (fp16 state dict without vision_encoder.*)")
    ap.add_argument("--vision", required=True, help="SigLIP folder (config.json, model.safetensors, "
                                                    "preprocessor_config.json)")
    ap.add_argument("--config", help="MiniMind-V config.json (default: minimind-3v release sizes)")
    ap.add_argument("--tokenizer", help="folder with tokenizer.json and tokenizer_config.json "
                                        "(default: the repository's data/tokenizer)")
    ap.add_argument("--out", required=True, help="minivlm model directory to write")
    ap.add_argument("--force", action="store_true", help="replace a non-empty --out")
    args = ap.parse_args(argv)
    try:
        convert(args)
    except (ConversionError, OSError, json.JSONDecodeError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        sys.exit(f"convert_minimind_v: error: {e}")


if __name__ == "__main__":
    main()
