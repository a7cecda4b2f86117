"""Checks that transformers loads a SmolVLM directory written by minivlm (save_model_dir of a model
loaded from a Hugging Face SmolVLM directory) strictly: no missing, unexpected or mismatched
tensors, the processor loads, and a forward pass with an image runs. With --weights-like SRC, the
model's tensors must also have SRC's names, shapes and dtypes.

  /work/venv/bin/python scripts/check_hf_smolvlm_dir.py DIR [DIR ...] [--weights-like SRC]

tests/unit/test_hf_smolvlm leaves such directories in its temporary directory:
  build/tests/test_hf_smolvlm --gtest_filter='HfSmolVLM.Saves*'
  /work/venv/bin/python scripts/check_hf_smolvlm_dir.py /tmp/minivlm_hf_saved_{f32,bf16,sharded} \
      --weights-like tests/fixtures/smolvlm-tiny
"""
import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors import safe_open  # noqa: E402
from transformers import AutoProcessor, SmolVLMForConditionalGeneration  # noqa: E402


def layout(path):
    with safe_open(os.path.join(path, "model.safetensors"), "pt") as f:
        return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}


def check(path, like):
    model, info = SmolVLMForConditionalGeneration.from_pretrained(path, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise SystemExit(f"{path}: transformers loading is not clean: {problems}")
    if like is not None:  # names and shapes (the dtypes are the source's, not necessarily LIKE's)
        want, got = layout(like), layout(path)
        if set(want) != set(got):
            raise SystemExit(f"{path}: tensor names differ from {like}: "
                             f"{sorted(set(want) ^ set(got))}")
        shapes = sorted(k for k in want if want[k][0] != got[k][0])
        if shapes:
            raise SystemExit(f"{path}: shapes differ from {like}: {shapes}")
    state = model.state_dict()
    with safe_open(os.path.join(path, "model.safetensors"), "pt") as f:
        for k in f.keys():
            if not torch.equal(state[k], f.get_tensor(k).to(state[k].dtype)):
                raise SystemExit(f"{path}: {k} differs between the file and the loaded model")
    processor = AutoProcessor.from_pretrained(path)
    image = Image.fromarray((np.arange(40 * 56 * 3) % 251).astype(np.uint8).reshape(40, 56, 3))
    text = "<|im_start|>user\n<image>What is this?<|im_end|>\n<|im_start|>assistant\n"
    inputs = processor(text=[text], images=[[image]], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    if not torch.isfinite(logits).all():
        raise SystemExit(f"{path}: non-finite logits")
    dtypes = sorted({v[1] for v in layout(path).values()})
    print(f"{path}: transformers loads it strictly ({len(layout(path))} tensors, {dtypes}); "
          f"forward {tuple(logits.shape)} ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--weights-like", default=None)
    a = ap.parse_args()
    for d in a.dirs:
        check(d, a.weights_like)


if __name__ == "__main__":
    sys.exit(main())
