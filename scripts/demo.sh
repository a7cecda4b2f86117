#!/usr/bin/env bash
# The whole pipeline on a fresh machine, on the CPU, in a few minutes: installs what is missing,
# builds, makes the synthetic dataset, initialises the tiny model, pretrains, fine-tunes, and
# evaluates on the held-out set — with the real images and with blank ones, to show the model
# reads the picture.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${MINIVLM_DEMO_DIR:-$root/runs/demo}
jobs=$(nproc)
tokenizer=$root/data/tokenizer/tokenizer.json

say() { printf '\n== %s\n' "$*"; }

say "setup and build"
./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs" --target minivlm train_pretrain train_sft eval infer >/dev/null
bin=$root/build/bin
rm -rf "$out"
mkdir -p "$out"

say "synthetic dataset: shapes of several colors, at positions, in counts ($out/data)"
"$bin/minivlm" make-dataset --out "$out/data" --seed 42 --train-images 2000 --eval-images 400

say "tiny MiniMind-V model: CLIP-style tower 64 px, pixel shuffle 2, MiniMind LLM ($out/model)"
"$bin/minivlm" init-model --config configs/tiny.json --tokenizer "$tokenizer" --out "$out/model" --seed 42

say "pretrain on captions, 6 epochs (the tiny LLM starts from scratch, so every weight but the vision tower trains)"
"$bin/train_pretrain" --model "$out/model" --data "$out/data/pretrain.jsonl" --images "$out/data/images" \
  --out "$out/pretrain" --train all --lr 1e-3 --warmup-steps 20 --batch-size 16 --epochs 6 --log-every 50

say "supervised fine-tuning on questions and answers"
"$bin/train_sft" --model "$out/pretrain/final" --data "$out/data/sft.jsonl" --images "$out/data/images" \
  --out "$out/sft" --lr 1e-3 --warmup-steps 20 --batch-size 16 --epochs 2 --log-every 100 \
  --eval "$out/data/eval.jsonl" --eval-every 480

say "held-out evaluation with greedy answers: real images, then the same questions with blank images"
"$bin/eval" --model "$out/sft/final" --data "$out/data/eval.jsonl" --images "$out/data/images" \
  --out "$out/eval" --generate --max-new-tokens 16
"$bin/eval" --model "$out/sft/final" --data "$out/data/eval.jsonl" --images "$out/data/images" \
  --out "$out/eval-blank" --generate --max-new-tokens 16 --blank-images

say "a question about a held-out image ($out/data/images/eval_00001.png)"
question=$(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); print(r["conversations"][0]["content"].split("\n")[-1])' "$out/data/eval.jsonl")
echo "user: $question"
printf 'assistant: '
"$bin/infer" --model "$out/sft/final" --image "$out/data/images/eval_00001.png" --prompt "$question" --greedy \
  --max-new-tokens 32

say "done: the model is in $out/sft/final, metrics in $out/eval/metrics.json"
