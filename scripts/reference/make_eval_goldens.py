"""Goldens for `eval`: per-sample losses computed by eval_ref.py (PyTorch, Pillow, HF tokenizers) for
a model from `minivlm init-model` and a dataset from `minivlm make-dataset`, both deterministic from
their seeds, so the C++ test can rebuild the same inputs and compare its `eval` output.

    /work/venv/bin/python scripts/reference/make_eval_goldens.py --bin build/bin
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOKENIZER = os.path.join(ROOT, "..", "shared", "data", "minimind-tokenizer", "tokenizer.json")

# The inputs; the C++ test (tests/integration/test_eval_parity.cpp) runs the same commands.
CASE = {
    "make_dataset": ["--seed", "7", "--train-images", "4", "--eval-images", "12"],
    "init_model": ["--config", "configs/tiny.json", "--seed", "7"],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory with the minivlm binary")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "goldens", "eval", "tiny_seed7.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, model = os.path.join(tmp, "data"), os.path.join(tmp, "model")
        minivlm = os.path.join(args.bin, "minivlm")
        subprocess.run([minivlm, "make-dataset", "--out", data] + CASE["make_dataset"], check=True, cwd=ROOT)
        subprocess.run([minivlm, "init-model", "--tokenizer", TOKENIZER, "--out", model] + CASE["init_model"],
                       check=True, cwd=ROOT)
        res = subprocess.run([sys.executable, os.path.join(HERE, "eval_ref.py"), "--model", model, "--data",
                              os.path.join(data, "eval.jsonl"), "--images", os.path.join(data, "images")],
                             check=True, capture_output=True, text=True)
    rows = [json.loads(l) for l in res.stdout.splitlines() if l.startswith('{"index"')]
    assert rows, res.stdout
    with open(args.out, "w") as f:
        json.dump({"case": CASE, "reference": "scripts/reference/eval_ref.py (float64)", "rows": rows}, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}: {len(rows)} samples")


if __name__ == "__main__":
    main()
