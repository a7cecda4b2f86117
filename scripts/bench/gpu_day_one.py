#!/usr/bin/env python3
"""The GPU day-one check: one table of what minivlm does on a real NVIDIA GPU, beside PyTorch.

    scripts/bench/gpu_day_one.py [--bin build-gpu/bin/minivlm] [--tests build-gpu/tests]
                                 [--python python3] [--budget-s 330] [--dry-run]

Run by scripts/gpu_check.sh after its CUDA build; standard library only. Parts, in order:
  kernel tests   the device test binaries (test_op_table, test_device_runtime, test_cuda_emu_model,
                 test_cuda_emu_minimind3v) with MINIVLM_TEST_DEVICE=cuda: passed / failed / skipped
                 counts from GoogleTest's summary
  losses         configs/tiny.json, 5 training steps of the same random model on the same batch
                 (`bench-model --what train --warmup 0 --reps 5`, B 4 × T 128): cpu f32, cuda f32,
                 cuda bf16; the largest difference of a step's loss from cpu's
  train bf16     minimind2-small-v and minimind3-v, B 16 × T 512, one image per sample, frozen
                 tower, SFT trainables: `bench-model --device cuda --dtype bf16` tokens/s and model
                 FLOP utilisation (scripts/bench/flops.py's FLOPs / step time / the GPU's dense
                 bf16 peak: H100 SXM and H200 989 TFLOP/s, H100 PCIe 756, A100 312)
  decode         the same models, batch 1, 256-token prompt, 128 greedy tokens, bf16 weights
The predicted column is the GPU cost model's (`bench-model --predict h100|h200 --device cuda-emu`:
a shape-only recording of one step, timed by roofline; docs/performance.md, "The GPU cost model")
for the same workload on the GPU nvidia-smi names (H200, else H100): tokens/s and MFU of a training
step, and decode tokens/s of one step at the mean context of the generation (prompt + new / 2).
The PyTorch column runs scripts/bench/torch_model.py --device cuda --bf16 (eager, autocast bf16)
on the same workloads where `--python` imports torch with CUDA; otherwise it reads "—".
Each command has a time limit, and once --budget-s is spent the parts left are marked skipped.
--dry-run prints the commands and the table's skeleton without running anything; --device cuda-emu
--models '' runs the minivlm parts on the CPU emulator (a check of this script without a GPU).
"""
import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import flops  # noqa: E402

TESTS = ["test_op_table", "test_device_runtime", "test_cuda_emu_model", "test_cuda_emu_minimind3v"]
MODELS = ["minimind2-small-v", "minimind3-v"]
TRAIN_B, TRAIN_T, PROMPT, NEW = 16, 512, 256, 128
LOSS_ARGS = ["--what", "train", "--config", "configs/tiny.json", "--batch", "4", "--seq", "128",
             "--warmup", "0", "--reps", "5"]


def predict_gpu(name):
    """The cost model's GPU for the one nvidia-smi names."""
    return "h200" if "H200" in name.upper() else "h100"


def peak_tflops(name):
    """Dense bf16 tensor-core peak of the GPU named by nvidia-smi, or None when unknown."""
    n = name.upper()
    if "H200" in n:
        return 989.0
    if "H100" in n:
        return 756.0 if "PCIE" in n else 989.0
    if "A100" in n:
        return 312.0
    return None


class Runner:
    def __init__(self, a):
        self.a, self.t0, self.dry = a, time.monotonic(), a.dry_run
        self.commands = []

    def left(self):
        return self.a.budget_s - (time.monotonic() - self.t0)

    def run(self, cmd, timeout, env=None):
        """(returncode, stdout, stderr); returncode None: not run (dry run or budget spent)."""
        self.commands.append(cmd)
        if self.dry:
            print("  $ " + " ".join(shlex.quote(c) for c in cmd))
            return None, "", "dry run"
        limit = min(timeout, self.left())
        if limit < 5:
            return None, "", "skipped: time budget spent"
        print(f"[{time.monotonic() - self.t0:5.0f} s] {' '.join(cmd)}", file=sys.stderr, flush=True)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env=env, cwd=ROOT)
            return r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired:
            return 124, "", f"timed out after {limit:.0f} s"
        except OSError as e:
            return 127, "", str(e)

    def json(self, cmd, timeout, env=None):
        """The last stdout line as JSON, or a short reason string."""
        rc, out, err = self.run(cmd, timeout, env)
        if rc is None:
            return "—" if self.dry else "skipped (time)"
        if rc != 0:
            lines = [x for x in (err or out).strip().splitlines() if x.strip()]
            msg = lines[-1] if lines else f"exit status {rc}"
            return "error: " + re.sub(r"^.*?error: (\S+\.cpp:\d+: )?(bench-model: )?", "", msg)[:90]
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return "error: no JSON line"


def gtest_counts(rc, out, err):
    if rc is None:
        return err if err != "dry run" else "—"
    text = out + err
    passed = re.search(r"\[  PASSED  \] (\d+) test", text)
    # --gtest_brief prints a line per failed test but not always the failed-count summary
    failed_names = set(re.findall(r"\[  FAILED  \] ([A-Za-z_][\w/]*\.[\w/]+)", text))
    skipped = re.search(r"\[  SKIPPED \] (\d+) test", text)
    if not passed and not failed_names:
        tail = (text.strip().splitlines() or [f"exit status {rc}"])[-1]
        return f"no summary (exit {rc}): {tail[:70]}"
    n = lambda m: int(m.group(1)) if m else 0  # noqa: E731
    s = f"{n(passed)} passed, {len(failed_names)} failed, {n(skipped)} skipped"
    return s + ("" if rc == 0 else f" (exit {rc})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build-gpu/bin/minivlm")
    ap.add_argument("--tests", default="build-gpu/tests")
    ap.add_argument("--python", default="python3")
    ap.add_argument("--budget-s", type=float, default=330, help="seconds for all parts together")
    ap.add_argument("--device", default="cuda", help="minivlm's device (cuda-emu exercises this script without a GPU)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated configs/<name>.json for the speed rows")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    r = Runner(a)
    rows = []  # (part, item, minivlm, predicted, PyTorch)

    if a.dry_run:
        print("commands:")
    gpu = "unknown GPU (dry run)" if a.dry_run else "no nvidia-smi"
    if not a.dry_run:
        rc, out, _ = r.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], 20)
        if rc == 0 and out.strip():
            gpu = out.strip().splitlines()[0]
    peak = peak_tflops(gpu)
    pgpu = predict_gpu(gpu)

    # Kernel tests on the real GPU.
    env = dict(os.environ, MINIVLM_TEST_DEVICE=a.device)
    for t in TESTS:
        rc, out, err = r.run([os.path.join(a.tests, t), "--gtest_brief=1"], 150, env)
        rows.append(("kernel tests", t, gtest_counts(rc, out, err), "n/a", "n/a"))

    # cpu vs cuda losses of 5 steps.
    base = r.json([a.bin, "bench-model", *LOSS_ARGS, "--device", "cpu"], 60)
    for dev, dt in ((a.device, "f32"), (a.device, "bf16")):
        res = r.json([a.bin, "bench-model", *LOSS_ARGS, "--device", dev, "--dtype", dt], 60)
        item = f"tiny, 5 steps, {dev} {dt} vs cpu f32"
        if isinstance(res, dict) and isinstance(base, dict):
            diff = max(abs(x - y) / abs(y) for x, y in zip(res["losses"], base["losses"]))
            cell = (f"{' '.join(f'{x:.4f}' for x in res['losses'])} vs "
                    f"{' '.join(f'{x:.4f}' for x in base['losses'])}; max rel diff {diff:.1e}")
        else:
            cell = res if not isinstance(res, dict) else base
        rows.append(("losses", item, cell, "n/a", "n/a"))

    # PyTorch with CUDA?
    torch_ok = False
    if not a.dry_run:
        rc, out, err = r.run([a.python, "-c", "import torch; assert torch.cuda.is_available(); print(torch.__version__)"], 60)
        torch_ok = rc == 0
        torch_note = f"torch {out.strip()}" if torch_ok else "no torch with CUDA"
    else:
        torch_note = "torch if importable"
    torch_py = [a.python, os.path.relpath(os.path.join(HERE, "torch_model.py"), ROOT)]

    for m in [x for x in a.models.split(",") if x]:
        cfg_path = os.path.join("configs", m + ".json")
        cfg = flops.read_config(os.path.join(ROOT, cfg_path))
        tr = ["--what", "train", "--config", cfg_path, "--batch", str(TRAIN_B), "--seq", str(TRAIN_T),
              "--warmup", "2", "--reps", "5"]
        gen = ["--what", "generate", "--config", cfg_path, "--prompt", str(PROMPT), "--new-tokens", str(NEW),
               "--warmup", "1", "--reps", "3"]
        mv_t = r.json([a.bin, "bench-model", *tr, "--device", a.device, "--dtype", "bf16"], 120)
        pt_t = r.json([*torch_py, *tr, "--device", "cuda", "--bf16"], 120) if (torch_ok or a.dry_run) else "—"
        f_train = flops.train_flops(cfg, TRAIN_B, TRAIN_T)
        pred = ["--device", "cuda-emu", "--dtype", "bf16", "--predict", pgpu, "--warmup", "0"]
        pr_t = r.json([a.bin, "bench-model", "--what", "train", "--config", cfg_path, "--batch", str(TRAIN_B),
                       "--seq", str(TRAIN_T), *pred], 120)
        pr_g = r.json([a.bin, "bench-model", "--what", "generate", "--config", cfg_path, "--batch", "1",
                       "--prompt", str(PROMPT + NEW // 2), *pred], 60)

        def ptps(res):
            return f"{res['predict']['tokens_per_s']:.0f}" if isinstance(res, dict) else res

        def pmfu(res):
            return f"{100 * res['predict']['mfu']:.1f}% ({pgpu})" if isinstance(res, dict) else "—"

        def tps(res):
            return f"{res['tokens'] / statistics.median(res['seconds']):.0f}" if isinstance(res, dict) else res

        def mfu(res):
            if not isinstance(res, dict):
                return "—"
            if peak is None:
                return "— (peak unknown)"
            tf = f_train / statistics.median(res["seconds"]) / 1e12
            return f"{100 * tf / peak:.1f}% ({tf:.1f} TFLOP/s)"

        label = f"{m} B={TRAIN_B} T={TRAIN_T}"
        rows.append(("train bf16", f"{label}: tokens/s", tps(mv_t), ptps(pr_t), tps(pt_t)))
        rows.append(("train bf16", f"{label}: MFU of {peak or '?'} TFLOP/s", mfu(mv_t), pmfu(pr_t), mfu(pt_t)))
        mv_g = r.json([a.bin, "bench-model", *gen, "--device", a.device, "--dtype", "bf16"], 90)
        pt_g = r.json([*torch_py, *gen, "--device", "cuda", "--bf16"], 90) if (torch_ok or a.dry_run) else "—"

        def dec(res):
            return f"{NEW / statistics.median(res['decode_seconds']):.0f}" if isinstance(res, dict) else res

        rows.append(("decode bf16", f"{m} B=1, {PROMPT}+{NEW}: tokens/s", dec(mv_g), ptps(pr_g), dec(pt_g)))

    print(f"\nGPU day one — {gpu}; dense bf16 peak {peak or 'unknown'} TFLOP/s; PyTorch: {torch_note}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {time.monotonic() - r.t0:.0f} s\n")
    hdr = ["part", "item", "minivlm", f"predicted ({pgpu})", "PyTorch eager"]
    w = [max(len(h), *(len(str(x[i])) for x in rows)) for i, h in enumerate(hdr)]
    print("| " + " | ".join(f"{h:{w[i]}}" for i, h in enumerate(hdr)) + " |")
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for row in rows:
        print("| " + " | ".join(f"{str(c):{w[i]}}" for i, c in enumerate(row)) + " |")
    failed = any(p == "kernel tests" and re.search(r"[1-9]\d* failed|no summary", str(c)) for p, _, c, _, _ in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
