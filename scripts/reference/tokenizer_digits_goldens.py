#!/usr/bin/env python3
"""Golden token ids of the SmolLM2 pre-tokenizer (a Sequence of Digits then ByteLevel) from the
Hugging Face `tokenizers` library, for tests/unit/test_tokenizer.cpp. Deterministic (fixed seed).

The tokenizer is data/tokenizer/tokenizer.json with its pre_tokenizer swapped for the one SmolLM2
publishes on the Hub; the test makes the same edit in memory. Variants:

  individual         Digits individual_digits true (SmolLM2's), ByteLevel add_prefix_space false
  runs               the same with individual_digits false (a run of digits is one piece)
  individual_prefix  individual_digits true, ByteLevel add_prefix_space true (the prefix space
                     goes before every piece Digits makes)

Writes tests/goldens/tokenizer/digits.jsonl: {"variant", "text", "ids"} per line.

usage: HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/reference/tokenizer_digits_goldens.py
       (from the repository root)
"""
import json
import os
import random

from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(ROOT, "data", "tokenizer", "tokenizer.json")
OUT = os.path.join(ROOT, "tests", "goldens", "tokenizer", "digits.jsonl")
SEED = 20250214


def smollm2_pre_tokenizer(individual_digits, add_prefix_space):
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": individual_digits},
        {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True,
         "use_regex": True}]}


VARIANTS = {
    "individual": smollm2_pre_tokenizer(True, False),
    "runs": smollm2_pre_tokenizer(False, False),
    "individual_prefix": smollm2_pre_tokenizer(True, True),
}

FIXED = [
    "0", "7", "42", "123", "2024", "00000000000000000000", "9" * 37, "3.14159", "-2.5e-3", "1e-5",
    "v2.0", "v10.21.3-rc1", "1,000,000", "1 000 000", "$1,234.56", "50%", "+1 (555) 012-3456",
    "2024-06-01", "2024/06/01 12:34:56", "12:00", "1/2", "3×4=12", "x1y2z3", "abc123def456",
    "a 1", "a  1", "a   12", " 1", "  12", "1 ", "12  ", "1\n2", "1\n\n2\n", "\n42\n", "\t7\t",
    "1 2 3 4 5", "1, 2, 3", "第1章", "2024年6月1日", "价格是100元", "共3.5公斤", "我有2个苹果和13个梨",
    "第 12 名", "１２３", "٣٤٥", "४२", "Ⅻ", "x²+y²", "½ cup", "①②③", "𝟙𝟚𝟛", "🔢 1️⃣ 2️⃣",
    "0x1F", "#ff00aa", "ISO 8601", "GPT-4o", "Qwen2.5-VL-7B", "COVID-19", "H2O", "CO2",
    "<|im_start|>1<|im_end|>", "<|im_start|>user\n12 + 34 = ?<|im_end|>\n<|im_start|>assistant\n46",
    "1<|im_start|>2", "<|endoftext|>2024", "2024<|endoftext|>", " 3<|image_pad|> 4",
    "<think>1+1=2</think>", "<|im_end|>\n\n9", "12<|im_end|>34<|im_end|>",
    "'s 1'll 2've", "don't 3", "It's 2024's best", "a'1", "1'd",
    "page 3 of 10.\nTotal: 1,024 items (99.9% done)\n",
    "def f(x):\n    return x ** 2 + 10\n", "for (int i = 0; i < 100; ++i) {}",
    "arr[0][1] = 3;", "https://example.com/v1/items/42?page=2", "192.168.0.1:8080",
    "", " ", "\n", "no digits at all", "中文没有数字", "Ünïcödé 4 façade",
]

WORDS = ["the", "year", "price", "is", "item", "version", "total", "page", "年", "月", "日", "元", "第",
         "个", "公斤", "价格", "版本", "abc", "Δ", "x", "<|im_start|>", "<|im_end|>", "<|image_pad|>",
         "<think>", "'s", "-", ".", ",", ":", "/", "%", "$", "(", ")", "é", "😀"]
SPACES = [" ", " ", " ", "", "", "  ", "\n", "\n\n", "\t", " \n", "\u3000", "\u00a0"]
NUMBERS = ["0", "1", "7", "10", "42", "99", "100", "2024", "3.14159", "1,000,000", "0.5", "12:30",
           "2024-06-01", "v2.0", "1e9", "٣", "１", "²", "Ⅻ", "007"]


def random_text(rng):
    parts = []
    for _ in range(rng.randint(1, 14)):
        parts.append(rng.choice(NUMBERS) if rng.random() < 0.5 else rng.choice(WORDS))
        parts.append(rng.choice(SPACES))
    if rng.random() < 0.3:
        parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30))))
    return "".join(parts)


def main():
    with open(SOURCE, encoding="utf-8") as f:
        source = json.load(f)
    rng = random.Random(SEED)
    texts = FIXED + [random_text(rng) for _ in range(300)]
    rows = []
    for name, pre in VARIANTS.items():
        j = dict(source, pre_tokenizer=pre)
        tok = Tokenizer.from_str(json.dumps(j))
        assert json.loads(tok.to_str())["pre_tokenizer"]["type"] == "Sequence"
        for text in texts:
            ids = tok.encode(text, add_special_tokens=False).ids
            if not pre["pretokenizers"][1]["add_prefix_space"]:
                assert tok.decode(ids, skip_special_tokens=False) == text, text
            rows.append({"variant": name, "text": text, "ids": ids})
    # The variants must differ from each other and from plain ByteLevel, or the goldens test little.
    plain = Tokenizer.from_str(json.dumps(dict(source, pre_tokenizer=VARIANTS["runs"]["pretokenizers"][1])))
    n = len(texts)
    differ_plain = sum(r["ids"] != plain.encode(r["text"], add_special_tokens=False).ids
                       for r in rows[:n])
    differ_runs = sum(a["ids"] != b["ids"] for a, b in zip(rows[:n], rows[n:2 * n]))
    assert differ_plain > n // 3 and differ_runs > n // 3, (differ_plain, differ_runs)
    with open(OUT, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{OUT}: {len(rows)} rows ({n} texts x {len(VARIANTS)} variants); individual differs "
          f"from plain ByteLevel on {differ_plain}, from runs on {differ_runs}")


if __name__ == "__main__":
    main()
