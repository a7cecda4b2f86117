#!/usr/bin/env python3
"""Golden token ids from the Hugging Face `tokenizers` library, for tests/unit/test_tokenizer*.cpp
and test_chat*.cpp. Deterministic (fixed seed). Writes, under tests/goldens/tokenizer/:

  minimind.jsonl  {"text", "ids"[, "skip"]}: varied strings encoded with the MiniMind tokenizer;
                  "skip" is decode(ids, skip_special_tokens=True) where it differs from the text
  decode.jsonl    {"ids", "text"}: random id sequences (often cutting UTF-8 sequences) and their
                  decoding, invalid bytes replaced by U+FFFD
  tiny.json       a hand-built byte-level BPE with merges in the ["a", "b"] form, added tokens with
                  lstrip / rstrip / single_word / normalized flags, add_prefix_space on
  tiny.jsonl      {"text", "ids"} for tiny.json
  chat.jsonl      {"messages", "images", "tokens_per_image", "ids", "labels", "prompt_ids"}:
                  conversations rendered in ChatML (SPEC §3) by this script and encoded whole

usage: /work/venv/bin/python scripts/reference/tokenizer_goldens.py  (from the repository root)
"""
import json
import os
import random

from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "goldens", "tokenizer")
MINIMIND = os.path.join(ROOT, "..", "shared", "data", "minimind-tokenizer", "tokenizer.json")
SEED = 20240601

EN_WORDS = """the quick brown fox jumps over lazy dog picture image shows a red circle on white
background what is in this photo describe it please model training loss token vision language
assistant user system hello world Python tokenizer merge byte pair encoding GPU CUDA kernel
attention softmax I you he she they we it cat dog car tree house blue green yellow small large
running walked jumping beautiful quickly HTML JSON URL iPhone McDonald O'Brien""".split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'LL", "'D", "'x",
                "n't", "'", "''", "'''"]
ZH = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"
      "行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前"
      "外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情"
      "图片猫狗红色圆形背景请描述这张照片中有什么模型训练语言视觉助手用户你好世界")
ZH_PUNCT = "，。！？、：；“”‘’《》（）【】…—～·「」"
PUNCT = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~"
DIGITS = ["0", "7", "42", "2024", "3.14159", "1,000,000", "0x1F", "1e-5", "１２３", "٣٤٥", "४२", "Ⅻ",
          "²", "½", "①②", "00000000000000000000", "9" * 37]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧", "🇨🇳", "🇺🇸", "❤️", "🎉", "🤖", "✨", "🙏🏻", "😂😂😂", "🧑‍💻", "☕",
         "\U0001FAE0"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t", " \t ", "\u00a0",
          "\u3000", "\u2028", "\u0085", "\x0b", "\x0c", "\u2009", "\u200b", "        ", "\n\n\n\n"]
SCRIPTS = ["Привет мир", "Γειά σου", "مرحبا بالعالم", "שלום", "नमस्ते दुनिया", "สวัสดี", "안녕하세요",
           "こんにちは世界", "カタカナ", "Ünïcödé façade naïve", "ǅungla", "ﬁnancial", "Ωmega", "ß",
           "e\u0301", "a\u0308\u0301", "\u0915\u094d\u0937", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𠀀𠀁", "\U000E0041",
           "\x00\x01\x1f\x7f", "\ue000", "�", "ꟊꟋ", "\u1c89"]
CODE = ["def f(x):\n    return x ** 2\n", '{"key": [1, 2.5, null], "b": "c"}', "for (int i = 0; i < n; ++i) {}",
        "#include <vector>", "x = a[1:-1]  # slice", "SELECT * FROM t WHERE id=3;", "<div class=\"a\">b</div>",
        "https://example.com/path?q=1&r=2", "user@example.com", "C:\\Windows\\System32", "$HOME/.bashrc"]
MINIMIND_ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|image_pad|>", "<|vision_start|>",
                  "<|vision_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>", "<|buffer3|>",
                  "<tts_pad>", "<|video_pad|>"]
PARTIAL_ADDED = ["<|im_start", "|im_end|>", "<|image_pad", "<|", "|>", "<think", "< |im_end|>",
                 "<|IM_START|>", "<<|im_end|>>", "<|im_end|><"]


def random_codepoint(rng):
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2100, 0x22FF),
              (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFFFD),
              (0x10000, 0x1FFFF), (0x20000, 0x3134F), (0x0, 0x10FFFF)]
    while True:
        lo, hi = rng.choice(blocks)
        cp = rng.randint(lo, hi)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def english(rng, n):
    out = []
    for _ in range(n):
        w = rng.choice(EN_WORDS)
        r = rng.random()
        if r < 0.15:
            w = w.capitalize()
        elif r < 0.2:
            w = w.upper()
        if rng.random() < 0.12:
            w += rng.choice(CONTRACTIONS)
        if rng.random() < 0.15:
            w += rng.choice(",.!?;:")
        out.append(w)
    return " ".join(out)


def chinese(rng, n):
    s = "".join(rng.choice(ZH) for _ in range(n))
    cut = sorted(rng.sample(range(len(s) + 1), min(len(s) + 1, max(1, n // 8))))
    parts, prev = [], 0
    for c in cut:
        parts.append(s[prev:c])
        parts.append(rng.choice(ZH_PUNCT))
        prev = c
    parts.append(s[prev:])
    return "".join(parts)


def fragment(rng, added):
    kind = rng.randrange(12)
    if kind == 0:
        return english(rng, rng.randint(1, 12))
    if kind == 1:
        return chinese(rng, rng.randint(1, 20))
    if kind == 2:
        return rng.choice(DIGITS)
    if kind == 3:
        return rng.choice(EMOJI)
    if kind == 4:
        return rng.choice(SPACES)
    if kind == 5:
        return "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 5)))
    if kind == 6:
        return rng.choice(SCRIPTS)
    if kind == 7:
        return rng.choice(CODE)
    if kind == 8:
        return rng.choice(added)
    if kind == 9:
        return rng.choice(PARTIAL_ADDED)
    if kind == 10:
        return "".join(random_codepoint(rng) for _ in range(rng.randint(1, 6)))
    return rng.choice(CONTRACTIONS) + rng.choice(["", " ", "s", "x"])


def varied_strings(rng, count, added):
    fixed = ["", " ", "  ", "\n", "a", "'s", "'sa", " 's", "''s", "don't", "I'M", "you're 're",
             "hello world", "Hello  world", "a  b", "a\n\nb", "a \n b", "x   ", "   x", "\t\tx",
             "\u3000x", " \u00a0x", "12345678901234567890", "1 2 3", "3.14", "你好，世界！",
             "<|im_start|>", "<|im_start|><|im_end|>", "<|im_start|>assistant\n", "<|im_end|>\n",
             "text<|image_pad|>text", " <|im_end|> ", "<|im_start|>user\n你好<|im_end|>\n",
             "<think>\n\n</think>\n\n", "<|endoftext|><|endoftext|>", "😀😀", "e\u0301", "\x00"]
    out = list(fixed)
    while len(out) < count:
        r = rng.random()
        if r < 0.08:
            s = english(rng, rng.randint(20, 80))
        elif r < 0.14:
            s = chinese(rng, rng.randint(30, 150))
        else:
            s = "".join(fragment(rng, added) for _ in range(rng.randint(1, 6)))
            if rng.random() < 0.3:
                s = rng.choice(SPACES) + s
            if rng.random() < 0.3:
                s += rng.choice(SPACES)
        out.append(s)
    return out


def write_jsonl(name, rows):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows, {os.path.getsize(path)} bytes to {path}")


def minimind_goldens(rng, tok):
    rows = []
    for text in varied_strings(rng, 3000, MINIMIND_ADDED):
        ids = tok.encode(text).ids
        row = {"text": text, "ids": ids}
        skip = tok.decode(ids, skip_special_tokens=True)
        if skip != text:
            row["skip"] = skip
        assert tok.decode(ids, skip_special_tokens=False) == text
        rows.append(row)
    write_jsonl("minimind.jsonl", rows)


def decode_goldens(rng, tok):
    vocab = tok.get_vocab_size()
    pool = tok.encode("你好，世界！😀👨‍👩‍👧 naïve ٣٤٥ こんにちは").ids
    rows = []
    for _ in range(300):
        if rng.random() < 0.5:
            ids = [rng.randrange(vocab) for _ in range(rng.randint(1, 8))]
        else:
            ids = [rng.choice(pool + [12, 1, 2, 36]) for _ in range(rng.randint(1, 8))]
        rows.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=False),
                     "skip": tok.decode(ids, skip_special_tokens=True)})
    write_jsonl("decode.jsonl", rows)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def tiny_tokenizer():
    """A byte-level BPE small enough to check by hand. Merges "a b"/"b c" and "ab c"/"a bc" both
    make "abc": the merge queue's stale-entry rule decides which applies."""
    b2u = bytes_to_unicode()
    added = [
        {"id": 0, "content": "<s>", "special": True, "normalized": False},
        {"id": 1, "content": "[MASK]", "special": True, "normalized": False, "lstrip": True,
         "rstrip": True},
        {"id": 2, "content": "<sep>", "special": False, "normalized": False},
        {"id": 3, "content": "word", "special": False, "normalized": True, "single_word": True},
        {"id": 4, "content": "<sep><sep>", "special": True, "normalized": False},
    ]
    for a in added:
        for k in ("single_word", "lstrip", "rstrip"):
            a.setdefault(k, False)
    vocab = {a["content"]: a["id"] for a in added}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["i", "n"], ["a", "b"], ["b", "c"], ["ab", "c"],
              ["a", "bc"], ["Ġ", "Ġ"], ["ĠĠ", "ĠĠ"], ["e", "r"], ["Ġ", "in"], ["l", "l"], ["e", "ll"],
              ["h", "ell"], ["ä", "½"], ["ä½", "ł"], ["Ċ", "Ċ"], ["a", "b"], ["t", "h"]]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": False,
                  "byte_fallback": False, "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


def tiny_goldens(rng):
    path = os.path.join(OUT, "tiny.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tiny_tokenizer(), f, ensure_ascii=False, indent=1)
    tok = Tokenizer.from_file(path)
    fixed = ["the", "the the", "abc", "aabc", "abcbc", "ababc", "abcabc", "hello hell", "in the inn",
             "    ", "  x", "a [MASK] b", "a   [MASK]   b", "[MASK]", "x[MASK]y", "<sep>", "<sep><sep>",
             "<sep><sep><sep>", "a<s>b", "word", "a word b", "words", "sword", "_word", "word_",
             "word.", "ü word 你好", "你好", "\n\nthe\n\n", ""]
    alphabet = ["a", "b", "c", "t", "h", "e", " ", "  ", "\n", "in", "[MASK]", "<sep>", "<s>", "word",
                "你", "好", "l"]
    texts = fixed + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
                     for _ in range(400)]
    write_jsonl("tiny.jsonl", [{"text": t, "ids": tok.encode(t).ids} for t in texts])


# ---- chat ---------------------------------------------------------------------------------------

def render(messages, images, n, generation_prompt=False):
    """ChatML as SPEC §3 writes it, with <image> expansion. Also returns the (start, end) character
    range of each assistant turn's supervised text: its content through "<|im_end|>\n"."""
    messages = [dict(m) for m in messages]
    if images and not any("<image>" in m["content"] for m in messages if m["role"] == "user"):
        first = next(m for m in messages if m["role"] == "user")
        first["content"] = "<image>\n" * images + first["content"]
    text, spans = "", []
    for m in messages:
        content = m["content"]
        if m["role"] == "user":
            content = content.replace("<image>", "<|image_pad|>" * n)
        text += f"<|im_start|>{m['role']}\n"
        start = len(text)
        text += f"{content}<|im_end|>\n"
        if m["role"] == "assistant":
            spans.append((start, len(text)))
    if generation_prompt:
        text += "<|im_start|>assistant\n"
    return text, spans


def labels_by_offsets(encoding, spans):
    """Supervised: the tokens that start inside an assistant turn's content-through-<|im_end|>\n.
    Where a reply starts with whitespace, the header's "\n" and the reply's first whitespace can
    share one token; it starts in the header, so it is not supervised."""
    return [int(any(a <= start < b for a, b in spans)) for start, _ in encoding.offsets]


def labels_by_search(ids, tok):
    """MiniMind-V's rule: after each <|im_start|>assistant\\n id run, up to and including the next
    <|im_end|>\\n id run."""
    bos = tok.encode("<|im_start|>assistant\n").ids
    eos = tok.encode("<|im_end|>\n").ids
    labels, i = [0] * len(ids), 0
    while i < len(ids):
        if ids[i:i + len(bos)] == bos:
            j = i + len(bos)
            while j < len(ids) and ids[j:j + len(eos)] != eos:
                j += 1
            for k in range(i + len(bos), min(j + len(eos), len(ids))):
                labels[k] = 1
            i = j + len(eos)
        else:
            i += 1
    return labels


def chat_goldens():
    tok = Tokenizer.from_file(MINIMIND)
    convs = [
        ([{"role": "user", "content": "<image>\nWhat is in the picture?"},
          {"role": "assistant", "content": "A red circle."}], 1, 4),
        ([{"role": "user", "content": "What is in the picture?"},
          {"role": "assistant", "content": "A red circle."}], 1, 3),
        ([{"role": "user", "content": "Compare these."},
          {"role": "assistant", "content": "The first is larger."}], 2, 2),
        ([{"role": "system", "content": "You are a helpful assistant."},
          {"role": "user", "content": "你好<image>这是什么？"},
          {"role": "assistant", "content": "这是一只猫。"},
          {"role": "user", "content": "它是什么颜色的？"},
          {"role": "assistant", "content": "橙色的，带白色条纹。"}], 1, 49),
        ([{"role": "user", "content": "Say hi."},
          {"role": "assistant", "content": "Hi!"},
          {"role": "user", "content": "Again, twice."},
          {"role": "assistant", "content": "Hi! Hi!"}], 0, 4),
        ([{"role": "user", "content": "<image><image> two images side by side"},
          {"role": "assistant", "content": "Left: a dog.\nRight: a cat."}], 2, 3),
        ([{"role": "user", "content": "Text with <|im_end|> inside and 'quotes'."},
          {"role": "assistant", "content": "Reply with <think> tag and emoji 😀."}], 0, 4),
        ([{"role": "user", "content": "empty reply"}, {"role": "assistant", "content": ""}], 0, 4),
        ([{"role": "user", "content": "trailing spaces   "},
          {"role": "assistant", "content": "answer\n\n"}], 0, 4),
        ([{"role": "system", "content": ""}, {"role": "user", "content": "<image>"},
          {"role": "assistant", "content": "A photo of the sea at dusk, with 3 boats."}], 1, 5),
        ([{"role": "user", "content": "indent"}, {"role": "assistant", "content": "\n\nfirst"},
          {"role": "user", "content": "more"}, {"role": "assistant", "content": "  two spaces"},
          {"role": "user", "content": "one"}, {"role": "assistant", "content": " one space"}],
         0, 4),
    ]
    rows = []
    for messages, images, n in convs:
        text, spans = render(messages, images, n)
        encoding = tok.encode(text)
        ids = encoding.ids
        labels = labels_by_offsets(encoding, spans)
        # Both rules agree unless a reply starts with two or more whitespace characters.
        if not any(m["content"][:2].isspace() for m in messages if m["role"] == "assistant"):
            assert labels == labels_by_search(ids, tok), messages
        prompt_ids = tok.encode(render(messages[:-1], images, n, generation_prompt=True)[0]).ids
        rows.append({"messages": messages, "images": images, "tokens_per_image": n, "ids": ids,
                     "labels": labels, "prompt_ids": prompt_ids})
    write_jsonl("chat.jsonl", rows)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(SEED)
    tok = Tokenizer.from_file(MINIMIND)
    minimind_goldens(rng, tok)
    decode_goldens(rng, tok)
    tiny_goldens(rng)
    chat_goldens()


if __name__ == "__main__":
    main()
