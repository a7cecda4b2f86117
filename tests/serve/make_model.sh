#!/usr/bin/env bash
# make_model.sh BIN_DIR OUT_DIR: the serve tests' model, trained here in about a minute and a half
# on 2 cores: the synthetic shapes dataset (400 training images, 20 held out), the tiny preset,
# pretrain 3 epochs, SFT 2 epochs. It answers the dataset's questions about a picture in a few
# words (mostly right): OUT_DIR/model, with the held-out questions in OUT_DIR/data/eval.jsonl and
# their images in OUT_DIR/data/images. Skips the work when OUT_DIR/model is already complete.
set -euo pipefail
bin=$1
out=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -f "$out/model/model.safetensors" ] && [ -f "$out/data/eval.jsonl" ]; then
  echo "make_model: $out/model is there"
  exit 0
fi
rm -rf "$out"
mkdir -p "$out"
"$bin/minivlm" make-dataset --out "$out/data" --seed 42 --train-images 400 --eval-images 20
"$bin/minivlm" init-model --config "$root/configs/tiny.json" \
  --tokenizer "$root/data/tokenizer/tokenizer.json" --out "$out/init" --seed 42
"$bin/train_pretrain" --model "$out/init" --data "$out/data/pretrain.jsonl" \
  --images "$out/data/images" --out "$out/pretrain" --train all --lr 2e-3 --warmup-steps 10 \
  --batch-size 16 --epochs 3 --log-every 25
"$bin/train_sft" --model "$out/pretrain/final" --data "$out/data/sft.jsonl" \
  --images "$out/data/images" --out "$out/sft" --lr 2e-3 --warmup-steps 10 --batch-size 16 \
  --epochs 2 --log-every 50
cp -r "$out/sft/final" "$out/model.tmp"
mv "$out/model.tmp" "$out/model"
echo "make_model: $out/model"
