#!/usr/bin/env python3
"""Golden values for Pillow's LANCZOS resize and SmolVLM's image processing, from Pillow and
transformers (needs transformers >= 5 with SmolVLMImageProcessorPil).

Writes tests/goldens/image/smolvlm.json and raw little-endian arrays beside it:

resize_lanczos  Image.resize((w, h), LANCZOS) of the inputs and sizes of the bilinear/bicubic resize
                goldens (scripts/reference/image_goldens.py; up- and downscaling, one axis only,
                1x1), the outputs as a strided uint8 subsample plus the FNV-1a hash of all bytes.
smolvlm         transformers' SmolVLMImageProcessorPil (LANCZOS, mean = std = 0.5) with
                size.longest_edge = L = 192, max_image_size.longest_edge = M = 64, with and without
                do_image_splitting, on the evaluation photos, a wide crop (300x90), a tall crop
                (90x260) and one smaller than a tile (40x30); plus one photo at L = M = 64, whose
                grid is 1x1 (no split). Per image: rows and cols (return_row_col_info), the number of
                tiles, and per tile ([3, M, M] float32, in pixel_values' order, the padding frames
                of the batch excluded): a strided subsample, the per-channel sums and the FNV-1a
                hash of all its float32 bytes. The prompt is processing_smolvlm's
                get_image_prompt_string(rows, cols, 16, ...) as SmolVLMProcessor builds it, with
                image_seq_len N = 16.
smolvlm_frame   one video frame as one tile: the same processor without splitting and with
                size.longest_edge = the video's longest edge (96): resize the longest edge to 96,
                then to M x M, as SmolVLMVideoProcessor's geometry does (which itself runs on
                torch tensors, not Pillow).

A crop is [left, top, right, bottom] of the decoded photo (Image.convert("RGB")).

Usage: python scripts/reference/smolvlm_image_goldens.py   (from the repository root)
"""
import json
import os

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "goldens", "image")
EVAL = "tests/fixtures/images"
L, M, N = 192, 64, 16
VIDEO_L = 96
TILE_STRIDE = 8
CROPS = [  # (name, photo, box)
    ("wide_300x90", "image-02-rainbow-umbrella-street", [170, 300, 470, 390]),
    ("tall_90x260", "image-04-yellow-car", [275, 190, 365, 450]),
    ("small_40x30", "image-01-golden-dog-balloons", [300, 300, 340, 330]),
]


def repo_path(rel):
    return os.path.normpath(os.path.join(ROOT, rel))


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data.tobytes():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def write(rel, array):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tofile(path)
    return rel


def slug(path):
    return os.path.splitext(os.path.basename(path))[0]


def decode(path):
    img = Image.open(repo_path(path))
    assert "A" not in img.getbands() and img.info.get("transparency") is None, path
    return np.array(img.convert("RGB"))


def resize_lanczos_cases(evals):
    cases = {
        "tests/goldens/image/inputs/rgb_37x23.png":
            [(64, 40), (18, 11), (1, 1), (37, 5), (5, 23), (100, 7), (36, 24)],
        "tests/goldens/image/inputs/pixel_1x1.png": [(3, 4), (1, 5)],
        "tests/goldens/image/inputs/row_40x1.png": [(13, 1), (13, 3), (80, 2)],
        "tests/goldens/image/inputs/column_1x40.png": [(1, 13), (4, 13)],
        "tests/goldens/image/inputs/tall_30x100.png": [(16, 53), (29, 40), (31, 10)],
        "tests/goldens/image/inputs/photo_160x120.png":
            [(64, 48), (96, 72), (224, 168), (7, 300), (500, 3), (1, 1), (159, 119), (33, 97),
             (161, 60), (120, 119)],
    }
    for path in evals:
        cases[path] = [(64, 64), (96, 61), (47, 150), (700, 650)]
    out = []
    for path, sizes in cases.items():
        rgb = decode(path)
        for w, h in sizes:
            res = np.array(Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS))
            stride = 1
            while (h // stride + 1) * (w // stride + 1) * 3 > 3 * 1024:
                stride += 1
            out.append({
                "input": path, "width": w, "height": h, "stride": stride,
                "data": write(f"resize_lanczos/{slug(path)}_{w}x{h}.u8", res[::stride, ::stride]),
                "fnv1a64": fnv1a64(res)})
    return out


def processor(longest_edge, splitting):
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil
    return SmolVLMImageProcessorPil(size={"longest_edge": longest_edge},
                                    max_image_size={"longest_edge": M},
                                    do_image_splitting=splitting,
                                    resample=Image.Resampling.LANCZOS,
                                    image_mean=[0.5] * 3, image_std=[0.5] * 3)


def prompt(rows, cols):
    from transformers.models.smolvlm.processing_smolvlm import get_image_prompt_string
    return get_image_prompt_string(rows, cols, N, fake_token_around_image="<fake_token_around_image>",
                                   image_token="<image>", global_image_token="<global-img>")


def expected_tiles(w, h, longest_edge, splitting):
    """rows, cols and the number of tiles from transformers' own size arithmetic."""
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil
    n, rows, cols = processor(longest_edge, splitting).get_number_of_image_patches(h, w)
    return n, rows, cols


def smolvlm_case(name, input_path, box, rgb, longest_edge, splitting, key):
    proc = processor(longest_edge, splitting)
    out = proc(Image.fromarray(rgb), return_tensors="np", return_row_col_info=True)
    rows, cols = int(out["rows"][0][0]), int(out["cols"][0][0])
    tiles = rows * cols + 1 if rows else 1
    pixels = out["pixel_values"][0]
    mask = out["pixel_attention_mask"][0]
    assert pixels.dtype == np.float32 and pixels.shape == (tiles, 3, M, M), pixels.shape
    assert mask.all()  # one image alone: no padding frames
    if splitting:
        n, r, c = expected_tiles(rgb.shape[1], rgb.shape[0], longest_edge, splitting)
        assert (r, c) == (rows, cols) and n == (tiles if rows else 0), (n, r, c, rows, cols)
    sub = pixels[:, :, ::TILE_STRIDE, ::TILE_STRIDE]
    return {
        "name": name, "input": input_path, "crop": box, "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]), "longest_edge": longest_edge, "tile_size": M,
        "splitting": splitting, "rows": rows, "cols": cols, "tiles": tiles,
        "stride": TILE_STRIDE,
        "data": write(f"{key}/{name}_L{longest_edge}_{'split' if splitting else 'single'}.f32",
                      sub),
        "channel_sums": [[float(t[c].astype(np.float64).sum()) for c in range(3)]
                         for t in pixels],
        "fnv1a64": [fnv1a64(t) for t in pixels],
        "prompt": prompt(rows, cols) if key == "smolvlm" else prompt(0, 0),
    }


def main():
    evals = [f"{EVAL}/{n}" for n in sorted(os.listdir(repo_path(EVAL))) if n.endswith(".jpg")]
    manifest = {"tokens_per_tile": N, "resize_lanczos": resize_lanczos_cases(evals),
                "smolvlm": [], "smolvlm_frame": []}
    images = [(slug(p), p, None, decode(p)) for p in evals]
    for name, photo, box in CROPS:
        path = f"{EVAL}/{photo}.jpg"
        rgb = decode(path)[box[1]:box[3], box[0]:box[2]]
        assert rgb.shape[:2] == (box[3] - box[1], box[2] - box[0])
        images.append((name, path, box, rgb))
    for name, path, box, rgb in images:
        for splitting in (True, False):
            manifest["smolvlm"].append(smolvlm_case(name, path, box, rgb, L, splitting,
                                                    "smolvlm"))
    # L = M: the longest edge becomes one tile, the grid is 1x1 and the image is not split.
    name, path, box, rgb = images[2]
    manifest["smolvlm"].append(smolvlm_case(name, path, box, rgb, M, True, "smolvlm"))
    for name, path, box, rgb in images[:1] + images[-3:]:
        manifest["smolvlm_frame"].append(smolvlm_case(name, path, box, rgb, VIDEO_L, False,
                                                      "smolvlm_frame"))

    with open(os.path.join(OUT, "smolvlm.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    for key in ("resize_lanczos", "smolvlm", "smolvlm_frame"):
        total = sum(os.path.getsize(os.path.join(OUT, c["data"])) for c in manifest[key])
        print(f"{key}: {len(manifest[key])} cases, {total / 1e3:.0f} kB")
    for c in manifest["smolvlm"]:
        print(f"  {c['name']:36s} L={c['longest_edge']:3d} split={c['splitting']!s:5s} "
              f"{c['rows']}x{c['cols']} tiles={c['tiles']}")


if __name__ == "__main__":
    main()
