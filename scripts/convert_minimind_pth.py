#!/usr/bin/env python3
"""Converts a MiniMind / MiniMind-V PyTorch state dict (.pth, e.g. llm_512.pth or full_sft_512.pth)
into a safetensors file that `minivlm init-model --llm-from FILE` reads.

    python3 scripts/convert_minimind_pth.py llm_512.pth llm_512.safetensors [--dtype float32]

Keeps the LLM tensors (`model.*`, `lm_head.weight`); drops `vision_encoder.*` / `vision_proj.*`
and buffers such as `freqs_cos`. Needs `torch` and `safetensors` (PyPI).
"""

import argparse
import sys

import torch
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pth")
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=["float32", "float16", "bfloat16", "keep"], default="float32")
    args = ap.parse_args()
    state = torch.load(args.pth, map_location="cpu", weights_only=True)
    if "model" in state and isinstance(state["model"], dict):  # a resume checkpoint
        state = state["model"]
    kept, dropped = {}, []
    for name, t in state.items():
        if not torch.is_tensor(t) or not (name.startswith("model.") or name == "lm_head.weight"):
            dropped.append(name)
            continue
        if "freqs_" in name:
            dropped.append(name)
            continue
        t = t.detach().contiguous()
        if args.dtype != "keep":
            t = t.to(getattr(torch, args.dtype))
        kept[name] = t.clone()  # tied tensors share storage; safetensors wants distinct ones
    if not kept:
        sys.exit(f"{args.pth}: no model.* tensors found (keys: {list(state)[:8]} ...)")
    save_file(kept, args.out, metadata={"format": "pt", "source": args.pth})
    print(f"wrote {args.out}: {len(kept)} tensors; dropped {len(dropped)} ({', '.join(dropped[:6])}"
          f"{' ...' if len(dropped) > 6 else ''})")


if __name__ == "__main__":
    main()
