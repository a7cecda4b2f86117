#!/usr/bin/env python3
"""Golden chat renderings of MiniMind-3's chat template, by Hugging Face transformers itself, for
tests/unit/test_chat.cpp. Writes tests/goldens/tokenizer/chat_minimind3.jsonl, one conversation a
line:

  {"messages", "images", "tokens_per_image", "generation_prompt", "text", "ids"}

`text` is `PreTrainedTokenizerFast(tokenizer_file=data/tokenizer/tokenizer.json)` with the
chat_template of data/tokenizer/tokenizer_config.json, `apply_chat_template(messages,
tokenize=False, add_generation_prompt=generation_prompt)`, after each `<image>` of the user
messages has become `tokens_per_image` × `<|image_pad|>` (as MiniMind-V does before templating);
`ids` is `encode(text, add_special_tokens=False)`. `messages` are the messages before that
expansion (what minivlm's render_chat takes, with one image of `tokens_per_image` tokens per
`<image>`).

usage: HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/reference/chat_template_goldens.py
"""
import json
import os

from transformers import PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENIZER = os.path.join(ROOT, "data", "tokenizer")
OUT = os.path.join(ROOT, "tests", "goldens", "tokenizer", "chat_minimind3.jsonl")
IMAGE_TOKEN = "<|image_pad|>"

S = "system"
U = "user"
A = "assistant"

# (messages, tokens_per_image, generation_prompt)
CASES = [
    ([(U, "Hello!")], 0, True),
    ([(U, "Hello!"), (A, "Hi, how can I help?")], 0, False),
    ([(S, "You are a helpful assistant."), (U, "What is 2+2?"), (A, "4")], 0, False),
    ([(S, "Be brief."), (U, "What is 2+2?")], 0, True),
    ([(U, "<image>\nWhat is in the picture?"), (A, "A red circle.")], 4, False),
    ([(U, "<image>\nWhat is in the picture?")], 4, True),
    ([(U, "<image>\n<image>\nCompare the two images."), (A, "The first is larger.")], 3, False),
    ([(U, "What time of day is it?<image>")], 2, True),
    ([(U, "<image>\n这张图片里有什么？"), (A, "图片中有一只猫，它正在睡觉。")], 4, False),
    ([(S, "你是一个乐于助人的助手。"), (U, "你好"), (A, "你好！有什么可以帮你的吗？"),
      (U, "讲个笑话")], 0, True),
    ([(U, "Two turns."), (A, "First reply."), (U, "<image>\nAnd this?"), (A, "Second reply.")],
     2, False),
    ([(U, "Two turns."), (A, "First reply."), (U, "<image>\nAnd this?"), (A, "Second reply.")],
     2, True),
    ([(U, "Think first."), (A, "<think>\nThe user wants reasoning.\n</think>\n\nDone.")], 0,
     False),
    ([(U, "Think first."), (A, "<think>reasoning without newlines</think>answer")], 0, False),
    ([(U, "Think first."), (A, "</think>\n\nOnly a closing tag.")], 0, False),
    ([(U, "Think first."), (A, "\n\n<think>\n\n\nmany newlines\n\n</think>\n\n\n\nanswer\n\n")], 0,
     False),
    ([(U, "q"), (A, "\n\nleading newlines are dropped")], 0, False),
    ([(U, "q"), (A, "  two spaces stay")], 0, False),
    ([(U, "q"), (A, "a<think>x</think>b</think>c")], 0, False),
    ([(U, "q"), (A, "<think>open but never closed")], 0, False),
    ([(U, "q"), (A, "")], 0, False),
    ([(U, "<image>\n请描述这张图片。"), (A, "<think>\n先看颜色。\n</think>\n\n红色的圆。")], 3, False),
    ([(U, "a"), (A, "b"), (S, "A system message later on."), (U, "c"), (A, "d")], 0, False),
    ([(U, "code:\n```python\nprint('hi')\n```"), (A, "It prints hi.\n")], 0, False),
]


def expand(content, n):
    return content.replace("<image>", IMAGE_TOKEN * n)


def main():
    with open(os.path.join(TOKENIZER, "tokenizer_config.json"), encoding="utf-8") as f:
        template = json.load(f)["chat_template"]
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(TOKENIZER, "tokenizer.json"))
    tok.chat_template = template
    rows = []
    for messages, n, generation_prompt in CASES:
        msgs = [{"role": r, "content": c} for r, c in messages]
        images = sum(c.count("<image>") for r, c in messages if r == U)
        assert (images > 0) == (n > 0), messages
        expanded = [{"role": m["role"],
                     "content": expand(m["content"], n) if m["role"] == U else m["content"]}
                    for m in msgs]
        text = tok.apply_chat_template(expanded, tokenize=False,
                                       add_generation_prompt=generation_prompt)
        ids = tok.encode(text, add_special_tokens=False)
        assert ids.count(tok.convert_tokens_to_ids(IMAGE_TOKEN)) == images * n, text
        rows.append({"messages": msgs, "images": images, "tokens_per_image": n,
                     "generation_prompt": generation_prompt, "text": text, "ids": ids})
    with open(OUT, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} conversations to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
