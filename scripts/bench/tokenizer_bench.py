#!/usr/bin/env python3
"""Tokenizer speed of the Hugging Face tokenizers library, to set beside `minivlm bench-tokenizer`
on the same file (each line with its newline encoded as one string).

  tokenizer_bench.py make TEXT [MB]        write a deterministic mixed English / Chinese / code /
                                           emoji text of about MB megabytes (default 8)
  tokenizer_bench.py run TOKENIZER TEXT    encode TEXT line by line: one thread (encode), then all
                                           cores (encode_batch); median of 5 runs each
"""
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))


def make(path, megabytes):
    import tokenizer_goldens as g

    rng = random.Random(7)
    docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                        "docs")
    prose = []
    for name in sorted(os.listdir(docs)):
        if name.endswith(".md"):
            with open(os.path.join(docs, name), encoding="utf-8") as f:
                prose.extend(line for line in f.read().split("\n") if line.strip())
    size, lines = 0, []
    while size < megabytes * 1e6:
        r = rng.random()
        if r < 0.3:
            line = g.chinese(rng, rng.randint(20, 200))
        elif r < 0.5:
            line = g.english(rng, rng.randint(10, 60))
        elif r < 0.7 and prose:
            line = rng.choice(prose)
        else:
            line = "".join(g.fragment(rng, g.MINIMIND_ADDED) for _ in range(rng.randint(2, 10)))
        line = line.replace("\n", " ") + "\n"
        lines.append(line)
        size += len(line.encode("utf-8"))
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)
    print(f"wrote {size / 1e6:.2f} MB, {len(lines)} lines to {path}")


def run(tokenizer_path, text_path):
    from tokenizers import Tokenizer

    with open(text_path, encoding="utf-8", newline="") as f:  # keep \r as it is
        text = f.read()
    lines = [line + "\n" for line in text.split("\n")]  # splitlines() also cuts at \r, \x85, ...
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    mb = len(text.encode("utf-8")) / 1e6
    for name, encode in [
        ("encode, 1 thread", lambda tok: sum(len(tok.encode(s).ids) for s in lines)),
        (f"encode_batch, {os.cpu_count()} threads",
         lambda tok: sum(len(e.ids) for e in tok.encode_batch(lines))),
    ]:
        tok = Tokenizer.from_file(tokenizer_path)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            tokens = encode(tok)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"tokenizers {name}: {mb:.2f} MB, {tokens} tokens; first run {mb / times[0]:.2f} MB/s;"
              f" median {mb / med:.2f} MB/s, {tokens / med:.0f} tokens/s")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 8)
    elif len(sys.argv) == 4 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
