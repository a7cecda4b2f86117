#!/usr/bin/env python3
"""Golden values for image decoding, resizing and the CLIP and SigLIP image processors (SPEC §2),
from Pillow + numpy (+ transformers).

Writes tests/goldens/image/: small synthetic inputs (inputs/), reference outputs as raw
little-endian arrays, and goldens.json describing every case. The real photos in
tests/fixtures/images (the evaluation photos) are referenced by path.

Reference semantics (what Hugging Face transformers' CLIPImageProcessor does with Pillow):
  decode     Image.open; an image with alpha (or a transparency key) is alpha-composited over opaque
             white with Image.alpha_composite, then convert("RGB") (transformers' convert_to_rgb).
             Pillow's integer formula equals round((c*a + 255*(255-a)) / 255); checked below.
  resize     Image.resize((w, h), BICUBIC) on the RGB image; resize_bilinear: the same with BILINEAR.
  shortest   long edge = int(size * long / short), short edge = size.
  crop       top = (H - s) // 2, left = (W - s) // 2, zero padding where the window leaves the image.
  normalize  float32(x * (1/255) in float64), then (x - mean) / std in float32; layout [3, s, s].
When transformers is installed, its CLIPImageProcessorPil output must equal the numpy pipeline
exactly, and convert_to_rgb must equal the decode reference.

SigLIP (goldens "siglip"): the output of transformers' Pillow-backed SiglipImageProcessorPil itself
(needs transformers), which must equal the numpy pipeline: Image.resize((S, S), resample) of the
whole image (no aspect ratio, no crop), float32(x * (1/255) in float64), (x - mean) / std in float32.
Two settings: resample=2 (BILINEAR) with mean = std = 0.5 at S = 64, and resample=3 (BICUBIC) with
CLIP's mean/std at S = 48. Inputs: the evaluation photos and crops of them (landscape, portrait,
small, and smaller than S so that they are upscaled); a crop is [left, top, right, bottom] of the
decoded photo. Stored: a strided subsample of each tensor, its per-channel sums, and the FNV-1a
hash of all its float32 bytes; the tensors of the upscaled crops of the first photo in full.
do_convert_rgb is left at the class default (True); the inputs are RGB, so it changes nothing.

Usage: python scripts/reference/image_goldens.py   (from the repository root)
"""
import json
import os
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "goldens", "image")
EVAL = "tests/fixtures/images"
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
FULL_LIMIT = 64 * 1024  # bytes; larger decoded images are stored as a strided subsample


def repo_path(rel):
    return os.path.normpath(os.path.join(ROOT, rel))


# ---- synthetic inputs ------------------------------------------------------------------------
def make_inputs():
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(OUT, "inputs"), exist_ok=True)

    def texture(w, h, channels):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * 255) // max(w - 1, 1), (y * 255) // max(h - 1, 1),
                         ((x + y) * 37) % 256], axis=-1)
        noise = rng.integers(-40, 41, size=(h, w, 3))
        rgb = np.clip(base + noise, 0, 255).astype(np.uint8)
        return rgb[..., :channels] if channels < 3 else rgb

    def save(img, name, **kw):
        path = os.path.join(OUT, "inputs", name)
        img.save(path, **kw)
        return f"tests/goldens/image/inputs/{name}"

    inputs = {}
    inputs["rgb_37x23.png"] = save(Image.fromarray(texture(37, 23, 3)), "rgb_37x23.png")
    alpha = np.concatenate([np.zeros(5), np.full(5, 255), rng.integers(0, 256, 31 * 17 - 10)])
    rgba = np.dstack([texture(31, 17, 3), alpha.reshape(17, 31).astype(np.uint8)])
    inputs["rgba_31x17.png"] = save(Image.fromarray(rgba, "RGBA"), "rgba_31x17.png")
    inputs["gray_29x41.png"] = save(Image.fromarray(texture(29, 41, 3)[..., 0]), "gray_29x41.png")
    la = np.dstack([texture(19, 13, 3)[..., 1], rng.integers(0, 256, (13, 19))]).astype(np.uint8)
    inputs["gray_alpha_19x13.png"] = save(Image.fromarray(la, "LA"), "gray_alpha_19x13.png")
    pal = Image.fromarray(texture(23, 19, 3)).quantize(colors=16, dither=Image.Dither.NONE)
    inputs["palette_23x19.gif"] = save(pal, "palette_23x19.gif", transparency=3)
    pal_png = Image.fromarray(texture(21, 15, 3)).quantize(colors=8, dither=Image.Dither.NONE)
    pal_png.info["transparency"] = bytes([0, 64, 128, 255, 255, 200, 100, 30])
    inputs["palette_trns_21x15.png"] = save(pal_png, "palette_trns_21x15.png",
                                            transparency=pal_png.info["transparency"])
    first = Image.fromarray(texture(27, 18, 3)).quantize(colors=32, dither=Image.Dither.NONE)
    second = Image.fromarray(255 - texture(27, 18, 3))
    inputs["animated_27x18.gif"] = save(first, "animated_27x18.gif", save_all=True,
                                        append_images=[second], duration=100, loop=0)
    inputs["rgb_33x21.bmp"] = save(Image.fromarray(texture(33, 21, 3)), "rgb_33x21.bmp")
    inputs["pixel_1x1.png"] = save(Image.fromarray(texture(1, 1, 3)), "pixel_1x1.png")
    inputs["row_40x1.png"] = save(Image.fromarray(texture(40, 1, 3)), "row_40x1.png")
    inputs["column_1x40.png"] = save(Image.fromarray(texture(1, 40, 3)), "column_1x40.png")
    inputs["tall_30x100.png"] = save(Image.fromarray(texture(30, 100, 3)), "tall_30x100.png")

    photo = Image.open(repo_path(f"{EVAL}/image-02-rainbow-umbrella-street.jpg")).convert("RGB")
    inputs["photo_160x120.png"] = save(photo.crop((200, 260, 360, 380)), "photo_160x120.png")
    dog = Image.open(repo_path(f"{EVAL}/image-01-golden-dog-balloons.jpg")).convert("RGB")
    inputs["photo_640x480.jpg"] = save(dog.crop((0, 80, 640, 560)), "photo_640x480.jpg",
                                       quality=90)
    small = dog.crop((301, 207, 346, 238))  # 45x31: partial MCUs on both axes
    for name, sub in [("420", 2), ("422", 1), ("444", 0)]:
        inputs[f"photo_45x31_{name}.jpg"] = save(small, f"photo_45x31_{name}.jpg", quality=85,
                                                 subsampling=sub)
    inputs["photo_gray_45x31.jpg"] = save(small.convert("L"), "photo_gray_45x31.jpg", quality=85)
    # Pillow cannot write 4:4:0 or 4:1:1; simplejpeg (libjpeg-turbo) can. Without it the committed
    # files are reused.
    for name in ("440", "411"):
        rel = f"tests/goldens/image/inputs/photo_45x31_{name}.jpg"
        try:
            import simplejpeg
            data = simplejpeg.encode_jpeg(np.ascontiguousarray(np.array(small)), quality=85,
                                          colorspace="RGB", colorsubsampling=name)
            with open(repo_path(rel), "wb") as f:
                f.write(data)
        except ImportError:
            assert os.path.exists(repo_path(rel)), f"{rel} needs simplejpeg to be created"
        inputs[f"photo_45x31_{name}.jpg"] = rel
    inputs["photo_progressive_64x48.jpg"] = save(dog.crop((100, 100, 164, 148)),
                                                 "photo_progressive_64x48.jpg", quality=80,
                                                 progressive=True)
    # Larger photos, as cameras and datasets write them: the crops resized (LANCZOS) to 800x600
    # with mild seeded noise for the high-frequency detail a photo of that size holds; one baseline
    # 4:2:0 with a restart marker every MCU row, one progressive 4:4:4 with optimized tables.
    rng = np.random.default_rng(7)
    for name, src, kw in [("photo_800x600_restart.jpg", dog.crop((0, 80, 640, 560)),
                           dict(quality=92, restart_marker_rows=1)),
                          ("photo_800x600_progressive_444.jpg", photo.crop((0, 0, 640, 480)),
                           dict(quality=88, subsampling=0, progressive=True, optimize=True))]:
        a = np.array(src.resize((800, 600), Image.Resampling.LANCZOS)).astype(np.int16)
        a += rng.normal(0, 3.0, a.shape).round().astype(np.int16)
        inputs[name] = save(Image.fromarray(a.clip(0, 255).astype(np.uint8)), name, **kw)
    return inputs


# ---- reference pipeline ----------------------------------------------------------------------
def decode(path):
    img = Image.open(repo_path(path))
    img.seek(0)
    if "A" in img.getbands() or img.info.get("transparency") is not None:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = np.array(Image.alpha_composite(white, rgba).convert("RGB"))
    else:
        rgb = np.array(img.convert("RGB"))
    try:
        from transformers.image_transforms import convert_to_rgb
        assert np.array_equal(convert_to_rgb(Image.open(repo_path(path)), return_numpy=True), rgb)
    except ImportError:
        pass
    return rgb


def resize(rgb, w, h, resample=Image.Resampling.BICUBIC):
    return np.array(Image.fromarray(rgb).resize((w, h), resample))


def shortest_edge_size(w, h, size):
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    return (size, new_long) if w <= h else (new_long, size)


def center_crop(rgb, s):
    h, w = rgb.shape[:2]
    top, left = (h - s) // 2, (w - s) // 2
    out = np.zeros((s, s, 3), np.uint8)
    ys, xs = slice(max(0, -top), min(s, h - top)), slice(max(0, -left), min(s, w - left))
    out[ys, xs] = rgb[ys.start + top:ys.stop + top, xs.start + left:xs.stop + left]
    return out


def clip(rgb, s):
    w, h = shortest_edge_size(rgb.shape[1], rgb.shape[0], s)
    crop = center_crop(resize(rgb, w, h), s)
    x = (crop.astype(np.float64) * (1 / 255)).astype(np.float32)
    return ((x - MEAN) / STD).astype(np.float32).transpose(2, 0, 1).copy()


def check_with_transformers(path, s, tensor):
    try:
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    except ImportError:
        return False
    proc = CLIPImageProcessorPil(size={"shortest_edge": s}, crop_size={"height": s, "width": s})
    ref = proc(Image.open(repo_path(path)), return_tensors="np")["pixel_values"][0]
    assert ref.dtype == np.float32 and np.array_equal(ref, tensor), f"{path} size {s}"
    return True


SIGLIP_SETTINGS = [  # (name, resample, mean, std, size)
    ("bilinear_64", Image.Resampling.BILINEAR, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], 64),
    ("bicubic_48", Image.Resampling.BICUBIC, MEAN.tolist(), STD.tolist(), 48),
]
SIGLIP_CROPS = {  # of the 640x640 evaluation photos
    "full": None, "landscape": [0, 160, 640, 400], "portrait": [213, 0, 397, 640],
    "small": [300, 300, 371, 353], "upscaled": [310, 290, 333, 307],
}


def siglip(rgb, resample, mean, std, s):
    x = (resize(rgb, s, s, resample).astype(np.float64) * (1 / 255)).astype(np.float32)
    mean, std = np.array(mean, np.float32), np.array(std, np.float32)
    return ((x - mean) / std).astype(np.float32).transpose(2, 0, 1).copy()


def siglip_transformers(rgb, resample, mean, std, s):
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil
    proc = SiglipImageProcessorPil(size={"height": s, "width": s}, resample=resample,
                                   image_mean=mean, image_std=std, do_convert_rgb=True)
    out = proc(Image.fromarray(rgb), return_tensors="np")["pixel_values"][0]
    assert out.dtype == np.float32 and out.shape == (3, s, s)
    return out


def check_alpha_formula():
    c, a = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgba = np.stack([c, c, c, a], -1).astype(np.uint8)
    white = Image.new("RGBA", (256, 256), (255, 255, 255, 255))
    pil = np.array(Image.alpha_composite(white, Image.fromarray(rgba, "RGBA")).convert("RGB"))
    assert np.array_equal(pil[..., 0], (c * a + 255 * (255 - a) + 127) // 255)


# ---- output ----------------------------------------------------------------------------------
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


def main():
    check_alpha_formula()
    inputs = make_inputs()
    evals = [f"{EVAL}/{n}" for n in sorted(os.listdir(repo_path(EVAL))) if n.endswith(".jpg")]
    manifest = {"decode": [], "resize": [], "clip": [], "center_crop": [], "shortest_edge": []}
    with_transformers = False

    for path in list(inputs.values()) + evals:
        rgb = decode(path)
        h, w = rgb.shape[:2]
        stride = 1
        while (h // stride + 1) * (w // stride + 1) * 3 > FULL_LIMIT:
            stride += 1
        sub = rgb[::stride, ::stride]
        manifest["decode"].append({
            "input": path, "width": w, "height": h, "stride": stride,
            "data": write(f"decode/{slug(path)}.u8", sub),
            "fnv1a64": fnv1a64(rgb) if path.endswith(".jpg") else None})

    resize_cases = {
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
        resize_cases[path] = [(64, 64), (96, 96), (96, 61), (47, 150)]
    for path, sizes in resize_cases.items():
        rgb = decode(path)
        for w, h in sizes:
            manifest["resize"].append({"input": path, "width": w, "height": h,
                                       "data": write(f"resize/{slug(path)}_{w}x{h}.u8",
                                                     resize(rgb, w, h))})

    # Bilinear: the same inputs and sizes (one fewer per photo); the larger outputs as a strided
    # subsample, every output's bytes as a hash.
    manifest["resize_bilinear"] = []
    for path, sizes in resize_cases.items():
        rgb = decode(path)
        for w, h in sizes:
            if path in evals and (w, h) == (96, 96):
                continue
            out = resize(rgb, w, h, Image.Resampling.BILINEAR)
            stride = 1
            while (h // stride + 1) * (w // stride + 1) * 3 > 12 * 1024:
                stride += 1
            manifest["resize_bilinear"].append({
                "input": path, "width": w, "height": h, "stride": stride,
                "data": write(f"resize_bilinear/{slug(path)}_{w}x{h}.u8", out[::stride, ::stride]),
                "fnv1a64": fnv1a64(out)})

    clip_cases = [(p, s) for p in inputs.values() for s in (16, 24)]
    clip_cases += [("tests/goldens/image/inputs/rgba_31x17.png", 224),
                   ("tests/goldens/image/inputs/photo_640x480.jpg", 224)]
    clip_cases += [(p, 224) for p in evals]
    for path, s in clip_cases:
        tensor = clip(decode(path), s)
        with_transformers |= check_with_transformers(path, s, tensor)
        stride = 1 if s <= 32 else 7
        manifest["clip"].append({
            "input": path, "size": s, "stride": stride,
            "data": write(f"clip/{slug(path)}_{s}.f32", tensor[:, ::stride, ::stride]),
            "channel_sums": [float(tensor[c].astype(np.float64).sum()) for c in range(3)]})

    manifest["siglip"] = []
    try:
        siglip_transformers(decode(evals[0]), Image.Resampling.BILINEAR, [0.5] * 3, [0.5] * 3, 8)
    except ImportError:
        manifest["siglip"] = json.load(open(os.path.join(OUT, "goldens.json")))["siglip"]
        print("transformers is not installed: the siglip goldens are kept", file=sys.stderr)
        evals_for_siglip = []
    else:
        evals_for_siglip = evals
    for path in evals_for_siglip:
        photo = decode(path)
        for variant, box in SIGLIP_CROPS.items():
            rgb = photo if box is None else photo[box[1]:box[3], box[0]:box[2]]
            for name, resample, mean, std, s in SIGLIP_SETTINGS:
                tensor = siglip_transformers(rgb, resample, mean, std, s)
                assert np.array_equal(tensor, siglip(rgb, resample, mean, std, s)), (path, name)
                full = variant == "upscaled" and path == evals[0]
                stride = 1 if full else 4
                manifest["siglip"].append({
                    "input": path, "crop": box, "resample": int(resample), "size": s,
                    "image_mean": mean, "image_std": std, "stride": stride,
                    "data": write(f"siglip/{slug(path)}_{variant}_{name}.f32",
                                  tensor[:, ::stride, ::stride]),
                    "channel_sums": [float(tensor[c].astype(np.float64).sum()) for c in range(3)],
                    "fnv1a64": fnv1a64(tensor)})

    rgb = decode("tests/goldens/image/inputs/rgb_37x23.png")
    for s in (16, 23, 30, 40, 1):
        manifest["center_crop"].append({
            "input": "tests/goldens/image/inputs/rgb_37x23.png", "size": s,
            "data": write(f"center_crop/rgb_37x23_{s}.u8", center_crop(rgb, s))})
    try:
        from transformers.image_transforms import center_crop as hf_center_crop
        for case in manifest["center_crop"]:
            s = case["size"]
            ref = hf_center_crop(rgb, (s, s), input_data_format="channels_last")
            assert np.array_equal(ref, center_crop(rgb, s)), f"center_crop {s}"
    except ImportError:
        pass

    for w, h, s in [(640, 480, 224), (480, 640, 224), (224, 224, 224), (37, 23, 16),
                    (333, 517, 224), (517, 333, 224), (1, 1000, 224), (1000, 3, 7),
                    (100, 299, 300), (3, 7, 5), (299, 100, 300), (97, 61, 224)]:
        ow, oh = shortest_edge_size(w, h, s)
        try:
            from transformers.image_transforms import get_resize_output_image_size
            ref = get_resize_output_image_size(np.zeros((h, w, 3), np.uint8), s,
                                               default_to_square=False,
                                               input_data_format="channels_last")
            assert ref == (oh, ow), (w, h, s, ref)
        except ImportError:
            pass
        manifest["shortest_edge"].append({"width": w, "height": h, "size": s,
                                          "out_width": ow, "out_height": oh})

    with open(os.path.join(OUT, "goldens.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns)
    print(f"wrote {OUT}: {total / 1e6:.2f} MB; transformers cross-check: "
          f"{'yes' if with_transformers else 'not installed'}", file=sys.stderr)


if __name__ == "__main__":
    main()
