#!/usr/bin/env python3
"""Writes tests/fixtures/parquet/: MiniMind-V-layout parquet files written by pyarrow, and their JSONL
twins (the same records, images as files), for tests/unit/test_parquet.cpp and the eval parity test.

    /work/venv/bin/python scripts/reference/make_parquet_fixtures.py

MiniMind-V's layout (its dataset class reads it with pyarrow): `conversations` is a JSON string of
[{role, content}] with <image> placeholders; `image_bytes` is the encoded image (binary), or a list
of them, null (or empty) for a text-only row. The images are the photos of tests/fixtures/images
shrunk to a few dozen pixels (JPEG, plus one PNG), so the fixtures stay small.

Files (the same records in each file of a layout, in every row-group / page / codec variant):
  images/                       the images as files, byte-identical to the blobs
  single.jsonl                  twin of single_*.parquet: at most one image per record
  single_snappy_1rg.parquet     image_bytes binary; one row group; snappy; many small V1 pages;
                                page statistics (page headers holding blobs)
  single_zstd_rg7.parquet       row groups of 7 rows; zstd; dictionary pages of 3 rows
  single_none_v2.parquet        uncompressed; data page V2; no dictionary
  list.jsonl                    twin of list_*.parquet: 0 to 3 images per record
  list_snappy_1rg.parquet       image_bytes list<binary>; one row group; snappy; V1 pages of 2 rows;
                                the dictionary overflows, later pages are plain
  list_zstd_rg5_v2.parquet      row groups of 5; zstd; data page V2
  list_none_nodict.parquet      uncompressed; no dictionary; V1 pages of a few rows
  bad.parquet                   rows a dataset must skip (see BAD below), with good rows between
  no_conversations.parquet      a file without the conversations column
  wrong_type.parquet            conversations as int64
  placeholder.parquet           MiniMind-V's text-only rows: no <image> in the text, an 8x8 black
                                JPEG in image_bytes; then a row with a real image
  placeholder.jsonl             the same conversations without any image (what the text-only rows
                                are when their placeholder is ignored)
  bomb.parquet                  a zstd page of a few kilobytes whose image inflates to 600 MiB,
                                more than the reader's page buffers may hold (written alone by
                                write_bomb())
"""
import io
import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PHOTOS = os.path.join(ROOT, "tests", "fixtures", "images")
OUT = os.path.join(ROOT, "tests", "fixtures", "parquet")


def make_images():
    """name -> bytes: each photo shrunk to a small JPEG, and one PNG."""
    photos = sorted(f for f in os.listdir(PHOTOS) if f.endswith(".jpg"))
    out = {}
    for k, name in enumerate(photos):
        img = Image.open(os.path.join(PHOTOS, name)).convert("RGB")
        w, h = (36 + 4 * k, 28 + 3 * k)
        buf = io.BytesIO()
        img.resize((w, h), Image.Resampling.BICUBIC).save(buf, format="JPEG", quality=80)
        out[f"p{k}.jpg"] = buf.getvalue()
    img = Image.open(os.path.join(PHOTOS, photos[0])).convert("RGB").resize((30, 22))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    out["q0.png"] = buf.getvalue()
    return out


CAPTIONS = [
    "A golden dog with balloons.", "一把彩虹伞在街上。", "Cherry blossoms over a bicycle.",
    "A yellow car parked by the road.", "A superhero on a rooftop at dusk.",
    "A race car drifting around a bend.", "A small picture of a dog.",
]
QUESTIONS = ["<image>\nWhat is in the picture?", "Describe the image.\n<image>",
             "<image>\n图片里有什么？", "What do you see?<image>"]


def conv(k, n_images):
    """Record k's conversation with n_images placeholders."""
    user = QUESTIONS[k % len(QUESTIONS)] if n_images else f"Tell me fact number {k}."
    if n_images > 1:
        user = "\n".join(["<image>"] * n_images) + f"\nCompare these {n_images} pictures."
    msgs = []
    if k % 9 == 4:
        msgs.append({"role": "system", "content": "You are a helpful assistant."})
    msgs.append({"role": "user", "content": user})
    msgs.append({"role": "assistant", "content": CAPTIONS[k % len(CAPTIONS)] + f" (#{k})"})
    if k % 6 == 5:
        msgs.append({"role": "user", "content": "And the colours?"})
        msgs.append({"role": "assistant", "content": "Mostly " + ["red", "blue", "green"][k % 3] + "."})
    return msgs


def records(names, max_images, count):
    """[(conversations, [image names])]: a deterministic mix of text-only and image records."""
    out = []
    for k in range(count):
        n = [1, 0, 1, 2, 1, 3, 0, 1][k % 8] if max_images > 1 else [1, 0, 1, 1][k % 4]
        n = min(n, max_images)
        imgs = [names[(k + 3 * j) % len(names)] for j in range(n)]
        out.append((conv(k, n), imgs))
    return out


def write_jsonl(path, recs):
    with open(path, "w", encoding="utf-8") as f:
        for msgs, imgs in recs:
            row = {"conversations": msgs}
            # Every form of SPEC §4.1: one path, a JSON list, a comma-separated list.
            if len(imgs) == 1:
                row["image"] = imgs[0]
            elif len(imgs) == 2:
                row["image"] = imgs
            elif imgs:
                row["image"] = ", ".join(imgs)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def table(recs, images, as_list, empty_for_none=False):
    convs = [json.dumps(m, ensure_ascii=False) for m, _ in recs]
    if as_list:
        blobs = []
        for k, (_, imgs) in enumerate(recs):
            if imgs:
                blobs.append([images[n] for n in imgs])
            else:  # text-only: alternately a null list and an empty list
                blobs.append(None if k % 2 else [])
        col = pa.array(blobs, type=pa.list_(pa.binary()))
    else:
        blobs = []
        for _, imgs in recs:
            blobs.append(images[imgs[0]] if imgs else (b"" if empty_for_none else None))
        col = pa.array(blobs, type=pa.binary())
    # A third column that the reader ignores, between the two it reads.
    ids = pa.array(range(len(recs)), type=pa.int64())
    return pa.table({"conversations": pa.array(convs, type=pa.string()), "id": ids,
                     "image_bytes": col})


def write(name, tbl, **kw):
    kw.setdefault("write_batch_size", 2)  # page size is checked every write_batch_size rows
    kw.setdefault("data_page_size", 512)
    # Page statistics of a binary column hold whole blobs (min and max); only the snappy files keep
    # them (large page headers), the others stay small.
    kw.setdefault("write_statistics", kw.get("compression") == "snappy")
    pq.write_table(tbl, os.path.join(OUT, name), **kw)


BAD = [
    # (conversations JSON text or None, image blobs): rows 1, 3, 5, ... are bad, even rows good.
    ("not json {", []),
    ("[]", []),
    (json.dumps([{"role": "robot", "content": "beep"}, {"role": "assistant", "content": "x"}]), []),
    (None, []),
    (json.dumps([{"role": "user", "content": "<image>\nWhat?"}, {"role": "assistant", "content": "A."}]),
     [b"\xff\xd8\xff\xe0 this is not a jpeg"]),
    (json.dumps([{"role": "user", "content": "<image>\n<image>\nWhat?"}, {"role": "assistant", "content": "A."}]),
     ["one"]),  # two placeholders, one image
    (json.dumps([{"role": "user", "content": "<image>\n<image>\nWhat?"}, {"role": "assistant", "content": "A."}]),
     ["one", None]),  # a null element in the list
]


def write_bomb():
    recs = [json.dumps([{"role": "user", "content": "<image>\nWhat?"},
                        {"role": "assistant", "content": "A."}])]
    write("bomb.parquet", pa.table({"conversations": pa.array(recs, type=pa.string()),
                                    "image_bytes": pa.array([bytes(600 << 20)], type=pa.binary())}),
          compression="zstd", use_dictionary=False)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "images"))
    images = make_images()
    for name, data in images.items():
        with open(os.path.join(OUT, "images", name), "wb") as f:
            f.write(data)
    names = sorted(images)

    single = records(names, 1, 24)
    write_jsonl(os.path.join(OUT, "single.jsonl"), single)
    write("single_snappy_1rg.parquet", table(single, images, False), compression="snappy")
    write("single_zstd_rg7.parquet", table(single, images, False), compression="zstd",
          row_group_size=7, data_page_size=1, write_batch_size=3)
    write("single_none_v2.parquet", table(single, images, False, empty_for_none=True),
          compression="none", data_page_version="2.0", use_dictionary=False)

    lst = records(names, 3, 24)
    write_jsonl(os.path.join(OUT, "list.jsonl"), lst)
    write("list_snappy_1rg.parquet", table(lst, images, True), compression="snappy",
          data_page_size=1, dictionary_pagesize_limit=4096)
    write("list_zstd_rg5_v2.parquet", table(lst, images, True), compression="zstd",
          row_group_size=5, data_page_version="2.0")
    write("list_none_nodict.parquet", table(lst, images, True), compression="none",
          use_dictionary=False, data_page_size=256)

    good = records(names, 3, len(BAD))
    convs, blobs = [], []
    for k in range(2 * len(BAD)):
        if k % 2 == 0:
            msgs, imgs = good[k // 2]
            convs.append(json.dumps(msgs, ensure_ascii=False))
            blobs.append([images[n] for n in imgs])
        else:
            text, imgs = BAD[k // 2]
            convs.append(text)
            blobs.append([images[names[0]] if b == "one" else b for b in imgs])
    write("bad.parquet", pa.table({"conversations": pa.array(convs, type=pa.string()),
                                   "image_bytes": pa.array(blobs, type=pa.list_(pa.binary()))}),
          compression="snappy", row_group_size=4)
    write("no_conversations.parquet", pa.table({"conversation": ["[]"], "image_bytes": [b""]}))
    write("wrong_type.parquet", pa.table({"conversations": pa.array([1, 2], type=pa.int64())}))

    # MiniMind-V's sft data: text-only rows carry a black 8x8 placeholder their text never names.
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG")
    black = buf.getvalue()
    text_rows = [[{"role": "user", "content": "Say hello %d." % k},
                  {"role": "assistant", "content": "Hello %d!" % k}] for k in range(2)]
    write_jsonl(os.path.join(OUT, "placeholder.jsonl"), [(m, []) for m in text_rows])
    write("placeholder.parquet",
          pa.table({"conversations": pa.array([json.dumps(m) for m in text_rows], type=pa.string()),
                    "image_bytes": pa.array([black, black], type=pa.binary())}),
          compression="snappy")

    write_bomb()

    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"wrote {OUT}: {total} bytes")


if __name__ == "__main__":
    main()
