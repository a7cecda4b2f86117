#!/usr/bin/env python3
"""Golden safetensors files written by the reference `safetensors` library (tests/goldens/safetensors/).

  all_dtypes.safetensors  F32 F16 BF16 I32 I64 F64 tensors, a scalar, an empty tensor, and several
                          __metadata__ entries (one non-ASCII), via safetensors.torch.save_file.
  all_dtypes.json         what the reference sees in it: header order, dtypes, shapes, the values
                          (as exact Python floats / ints) and the metadata.
  interop.safetensors     the same tensors with the single metadata entry {"format": "pt"}; the C++
                          writer must reproduce this file byte for byte.

The reverse direction (the reference library reads what minivlm writes): the unit test
SafeTensorsInterop.WriterMatchesReferenceBytes leaves its output in BUILD/tests/written_by_minivlm.safetensors;
check it with
  python scripts/reference/safetensors_goldens.py --check BUILD/tests/written_by_minivlm.safetensors

Regenerate: python scripts/reference/safetensors_goldens.py   (torch, safetensors)
"""
import argparse
import json
import os
import struct

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "goldens", "safetensors")
CODES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
         torch.int32: "I32", torch.int64: "I64", torch.float64: "F64"}
METADATA = {"format": "pt", "producer": "safetensors-python", "note": "ünïcode ✓"}
INTEROP_METADATA = {"format": "pt"}


def make_tensors():
    g = torch.Generator().manual_seed(1234)
    f16 = (torch.randn(4, 3, generator=g) * 10).to(torch.float16)
    f16[0, 0] = 3e-7  # a subnormal half
    f16[0, 1] = -65504.0  # the most negative finite half
    return {
        "f32": torch.randn(3, 5, generator=g),
        "f16": f16,
        "bf16": (torch.randn(2, 7, generator=g) * 1e3).to(torch.bfloat16),
        "i32": torch.tensor([-2**31, 2**31 - 1, 0, -1, 123456789, -987654321], dtype=torch.int32),
        "i64": torch.tensor([[-2**62, 2**40 + 7], [-1, 2**63 - 1]], dtype=torch.int64),
        "f64": torch.randn(5, generator=g, dtype=torch.float64),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 4),
        "model.layers.0.self_attn.q_proj.weight": torch.randn(2, 3, generator=g),
    }


def header_of(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n), object_pairs_hook=lambda pairs: pairs)


def describe(path, tensors):
    names = [k for k, _ in header_of(path) if k != "__metadata__"]
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
    return {
        "header_order": names,
        "metadata": metadata,
        "tensors": {
            name: {
                "dtype": CODES[t.dtype],
                "shape": list(t.shape),
                "values": (t.double() if t.is_floating_point() else t).flatten().tolist(),
            }
            for name, t in tensors.items()
        },
    }


def generate():
    os.makedirs(OUT, exist_ok=True)
    tensors = make_tensors()
    path = os.path.join(OUT, "all_dtypes.safetensors")
    save_file(tensors, path, metadata=METADATA)
    loaded = load_file(path)
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    with open(os.path.join(OUT, "all_dtypes.json"), "w", encoding="utf-8") as f:
        json.dump(describe(path, loaded), f, indent=1, ensure_ascii=False)
        f.write("\n")
    save_file(tensors, os.path.join(OUT, "interop.safetensors"), metadata=INTEROP_METADATA)
    print("wrote", OUT)


def check(path):
    expected = load_file(os.path.join(OUT, "all_dtypes.safetensors"))
    got = load_file(path)
    assert sorted(got) == sorted(expected), f"names differ: {sorted(got)} vs {sorted(expected)}"
    for name, t in expected.items():
        assert got[name].dtype == t.dtype and torch.equal(got[name], t), f"tensor {name} differs"
    with safe_open(path, "pt") as f:
        assert f.metadata() == INTEROP_METADATA, f"metadata differs: {f.metadata()}"
    print(f"OK: the safetensors library reads {path}: {len(got)} tensors and metadata match")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="FILE", help="verify a file written by minivlm instead")
    args = ap.parse_args()
    check(args.check) if args.check else generate()
