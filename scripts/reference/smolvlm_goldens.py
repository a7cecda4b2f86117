#!/usr/bin/env python3
"""SmolVLM chat template and SmolVLM2 video goldens, by Hugging Face transformers itself, for
tests/unit/test_chat.cpp and tests/unit/test_video.cpp. Writes:

  tests/fixtures/smolvlm-tokenizer/tokenizer.json   data/tokenizer/tokenizer.json plus SmolVLM's
      special tokens (<fake_token_around_image>, <image>, <global-img>, <row_1_col_1>..<row_6_col_6>,
      <end_of_utterance>, <video>), added with the tokenizers library
  tests/fixtures/smolvlm-tokenizer/chat_template.json   {"chat_template": transformers'
      SmolVLM DEFAULT_CHAT_TEMPLATE (SmolVLM2's, with <video>)}
  tests/goldens/tokenizer/chat_smolvlm.jsonl   one conversation a line:
      {"messages", "media": [{"video", "text", "image_tokens"}], "generation_prompt", "text", "ids"}
      `text` is apply_chat_template of the messages (minivlm's string content split into SmolVLM's
      content list: text pieces and {"type": "image"} / {"type": "video"} at each <image> / <video>,
      empty text pieces dropped) with both SmolVLM templates (SmolVLM-Instruct's and transformers'
      DEFAULT_CHAT_TEMPLATE, which must agree), then each <image> / <video> replaced by the next
      media's prompt as SmolVLMProcessor does; `ids` is the fixture tokenizer's encoding of it.
  tests/fixtures/video/tiny.mp4   (only with --video, or when missing) 32x24, 5 fps, 30 frames,
      MPEG-4 part 2 in MP4: frame i is a flat colour (8·i, 255 − 8·i, 128)
  tests/goldens/video/sampling.json   SmolVLMVideoProcessor.sample_frames on metadata cases, and
      read_video_pyav's metadata of tiny.mp4 with its sampled indices, timestamps and frames' mean
      colours
  tests/goldens/video/prompts.json   SmolVLMProcessor.replace_video_token's text for those cases
  tests/goldens/video/num2words.json   num2words(n) for the counts a prompt can hold

usage: HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/reference/smolvlm_goldens.py [--video]
(needs `pip install av num2words`)
"""
import json
import os
import sys
import types

import numpy as np
from num2words import num2words
from tokenizers import AddedToken, Tokenizer
from transformers import PreTrainedTokenizerFast
from transformers.models.smolvlm import processing_smolvlm
from transformers.models.smolvlm.processing_smolvlm import SmolVLMProcessor
from transformers.models.smolvlm.video_processing_smolvlm import SmolVLMVideoProcessor
from transformers.video_utils import VideoMetadata, read_video_pyav

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "smolvlm-tokenizer")
VIDEO = os.path.join(ROOT, "tests", "fixtures", "video", "tiny.mp4")
GOLDENS = os.path.join(ROOT, "tests", "goldens")

SPECIAL = (["<fake_token_around_image>", "<image>", "<global-img>"] +
           [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)] +
           ["<end_of_utterance>", "<video>"])

# SmolVLM-Instruct's chat_template.json (256M/500M/2.2B Instruct), images only.
INSTRUCT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if "
    "message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in "
    "message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == "
    "'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if "
    "add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")
DEFAULT_TEMPLATE = processing_smolvlm.DEFAULT_CHAT_TEMPLATE

FAKE, GLOBAL, IMAGE = "<fake_token_around_image>", "<global-img>", "<image>"


def single_image(seq):
    return processing_smolvlm._prompt_single_image(seq, FAKE, IMAGE, GLOBAL)


def split_image(seq, rows, cols):
    return processing_smolvlm.get_image_prompt_string(rows, cols, seq, FAKE, IMAGE, GLOBAL)


def video_prompt(seq, metadata):
    """SmolVLMProcessor.replace_video_token itself, on a stand-in for the processor's state."""
    me = types.SimpleNamespace(image_seq_len=seq, image_token=IMAGE, fake_image_token=FAKE,
                               global_image_token=GLOBAL)
    return SmolVLMProcessor.replace_video_token(me, {"video_metadata": [metadata]}, 0)


def video_metadata(total, fps, duration, indices):
    return VideoMetadata(total_num_frames=total, fps=fps, duration=duration,
                         frames_indices=list(indices))


def content_list(text):
    """minivlm's string content as SmolVLM's content list."""
    items, at = [], 0
    while True:
        hits = [(text.find(m, at), m) for m in ("<image>", "<video>") if text.find(m, at) >= 0]
        if not hits:
            break
        pos, marker = min(hits)
        if pos > at:
            items.append({"type": "text", "text": text[at:pos]})
        items.append({"type": marker[1:-1]})
        at = pos + len(marker)
    if at < len(text) or not items:
        items.append({"type": "text", "text": text[at:]})
    return items


def write_fixture():
    os.makedirs(FIXTURE, exist_ok=True)
    tok = Tokenizer.from_file(os.path.join(ROOT, "data", "tokenizer", "tokenizer.json"))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tok.save(os.path.join(FIXTURE, "tokenizer.json"), pretty=False)
    with open(os.path.join(FIXTURE, "chat_template.json"), "w", encoding="utf-8") as f:
        json.dump({"chat_template": DEFAULT_TEMPLATE}, f, indent=2)
        f.write("\n")


S, U, A = "system", "user", "assistant"
# Media prompts: ("image", seq) a single-tile image, ("split", seq, rows, cols), ("video", seq,
# total, fps, duration, indices).
IMG = ("image", 4)
SPLIT = ("split", 2, 2, 3)
VID = ("video", 2, 30, 5.0, 6.0, [0, 7, 14, 22, 29])
VID_LONG = ("video", 1, 2000, 25.0, 80.0, [25, 500, 1000, 1975])

CHAT_CASES = [
    ([(U, "Hello!")], [], True),
    ([(U, "Hello!"), (A, "Hi, how can I help?")], [], False),
    ([(U, "Hello!"), (A, " Hi, how can I help?")], [], False),
    ([(S, "You are a helpful assistant."), (U, "What is 2+2?"), (A, "4")], [], False),
    ([(S, "Be brief."), (U, "What is 2+2?")], [], True),
    ([(U, "<image>Can you describe this image?")], [IMG], True),
    ([(U, "<image>Can you describe this image?"), (A, "A red circle.")], [IMG], False),
    ([(U, "<image>\nWhat is in the picture?"), (A, "A red circle.")], [SPLIT], False),
    ([(U, "What time of day is it?<image>")], [IMG], True),
    ([(U, "<image><image>Compare the two images."), (A, "The first is larger.")], [IMG, SPLIT],
     False),
    ([(U, "Compare <image> and <image>.")], [SPLIT, IMG], True),
    ([(U, "<video>What happens in this video?")], [VID], True),
    ([(U, "<video>What happens in this video?"), (A, "A colour fades.")], [VID], False),
    ([(U, "Describe this video: <video>")], [VID_LONG], True),
    ([(U, "<image>and<video>")], [IMG, VID], True),
    ([(U, "<image>\n这张图片里有什么？"), (A, "图片中有一只猫，它正在睡觉。")], [IMG], False),
    ([(U, "Two turns."), (A, "First reply."), (U, "<image>And this?"), (A, "Second reply.")],
     [IMG], False),
    ([(U, "Two turns."), (A, "First reply."), (U, "<image>And this?"), (A, "Second reply.")],
     [IMG], True),
    ([(U, "q"), (A, "")], [], False),
    ([(U, ""), (A, "empty question")], [], False),
    ([(U, "a"), (A, "b"), (S, "A system message later on."), (U, "c"), (A, "d")], [], False),
    ([(U, "code:\n```python\nprint('hi')\n```"), (A, "It prints hi.\n")], [], False),
]


def media_prompt(m):
    if m[0] == "image":
        return {"video": False, "text": single_image(m[1]), "image_tokens": m[1]}
    if m[0] == "split":
        _, seq, rows, cols = m
        return {"video": False, "text": split_image(seq, rows, cols),
                "image_tokens": seq * (rows * cols + 1)}
    _, seq, total, fps, duration, indices = m
    return {"video": True, "text": video_prompt(seq, video_metadata(total, fps, duration, indices)),
            "image_tokens": seq * len(indices)}


def expand_media(text, media):
    out, at, k = "", 0, 0
    while True:
        hits = [(text.find(m, at), m) for m in ("<image>", "<video>") if text.find(m, at) >= 0]
        if not hits:
            break
        pos, marker = min(hits)
        assert media[k]["video"] == (marker == "<video>"), (text, k)
        out += text[at:pos] + media[k]["text"]
        at, k = pos + len(marker), k + 1
    assert k == len(media), text
    return out + text[at:]


def write_chat_goldens():
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(FIXTURE, "tokenizer.json"))
    rows = []
    for messages, media, generation_prompt in CHAT_CASES:
        conv = [{"role": r, "content": content_list(c)} for r, c in messages]
        has_video = any(m[0] == "video" for m in media)
        texts = [tok.apply_chat_template(conv, chat_template=t, tokenize=False,
                                         add_generation_prompt=generation_prompt)
                 for t in ([DEFAULT_TEMPLATE] if has_video else [INSTRUCT_TEMPLATE,
                                                                 DEFAULT_TEMPLATE])]
        assert all(t == texts[0] for t in texts), texts
        prompts = [media_prompt(m) for m in media]
        text = expand_media(texts[0], prompts)
        ids = tok.encode(text, add_special_tokens=False)
        assert ids.count(tok.convert_tokens_to_ids(IMAGE)) == sum(p["image_tokens"]
                                                                  for p in prompts)
        rows.append({"messages": [{"role": r, "content": c} for r, c in messages],
                     "media": prompts, "generation_prompt": generation_prompt, "text": text,
                     "ids": ids})
    out = os.path.join(GOLDENS, "tokenizer", "chat_smolvlm.jsonl")
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} conversations to {os.path.relpath(out, ROOT)}")


def write_video():
    import av
    os.makedirs(os.path.dirname(VIDEO), exist_ok=True)
    container = av.open(VIDEO, mode="w")
    stream = container.add_stream("mpeg4", rate=5)
    stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
    stream.options = {"qscale": "2"}
    for i in range(30):
        img = np.zeros((24, 32, 3), dtype=np.uint8)
        img[:, :] = (8 * i, 255 - 8 * i, 128)
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    print(f"wrote {os.path.relpath(VIDEO, ROOT)} ({os.path.getsize(VIDEO)} bytes)")


# (total_num_frames, fps, duration, sampling fps, max_frames)
SAMPLING_CASES = [
    (30, 5.0, 6.0, 1.0, 64), (30, 5.0, 6.0, 1.0, 2), (30, 5.0, 6.0, 2.0, 3), (30, 5.0, 6.0, 5, 64),
    (30, 5.0, 6.0, 0.1, 64), (1, 25.0, 0.04, 1.0, 64), (2, 30.0, 2 / 30, 1.0, 64),
    (100, 25.0, 4.0, 1.0, 64), (100, 25.0, 4.0, 0.5, 1), (2000, 25.0, 80.0, 1.0, 64),
    (1500, 25.0, 60.0, 1.0, 64), (1651, 25.0, 66.04, 1.0, 64), (1650, 25.0, 66.0, 1.0, 64),
    (7200, 29.97, 7200 / 29.97, 1.0, 64), (7200, 29.97, 7200 / 29.97, 0.5, 50),
    (18000, 30.0, 600.0, 1.0, 64), (18000, 30.0, 600.0, 2.0, 100), (90, 30.0, 3.0, 1.5, 64),
    (45, 15.0, 3.0, 2.5, 64), (75, 24.0, 3.125, 1.0, 64), (240, 24.0, 10.0, 1.0, 7),
    (37, 12.5, 2.96, 3.0, 64), (300, 23.976, 300 / 23.976, 1.0, 8), (5, 1.0, 5.0, 1.0, 2),
    (4, 1.0, 4.0, 1.0, 1), (3720, 1.0, 3720.0, 1.0, 64), (450000, 25.0, 18000.0, 1.0, 64),
]


def sample(total, fps, duration, target_fps, max_frames):
    vp = SmolVLMVideoProcessor(video_sampling={"fps": target_fps, "max_frames": max_frames,
                                               "video_size": {"longest_edge": 64}},
                               max_image_size={"longest_edge": 32})
    md = VideoMetadata(total_num_frames=total, fps=fps, duration=duration)
    return [int(i) for i in vp.sample_frames(md)]


def write_video_goldens():
    os.makedirs(os.path.join(GOLDENS, "video"), exist_ok=True)
    cases, prompts = [], []
    for total, fps, duration, target_fps, max_frames in SAMPLING_CASES:
        idx = sample(total, fps, duration, target_fps, max_frames)
        md = video_metadata(total, fps, duration, idx)
        cases.append({"total_num_frames": total, "fps": fps, "duration": duration,
                      "sample_fps": target_fps, "max_frames": max_frames, "indices": idx,
                      "timestamps": md.timestamps})
        for seq in (1, 3) if len(cases) <= 6 else (1,):
            prompts.append({"total_num_frames": total, "fps": fps, "duration": duration,
                            "indices": idx, "image_seq_len": seq,
                            "text": video_prompt(seq, md)})

    files = []
    for target_fps, max_frames in ((1.0, 64), (1.0, 2), (2.0, 3), (5.0, 64)):
        vp = SmolVLMVideoProcessor(video_sampling={"fps": target_fps, "max_frames": max_frames,
                                                   "video_size": {"longest_edge": 64}},
                                   max_image_size={"longest_edge": 32})
        frames, md = read_video_pyav(VIDEO, sample_indices_fn=vp.sample_frames)
        files.append({"file": "tests/fixtures/video/tiny.mp4", "sample_fps": target_fps,
                      "max_frames": max_frames, "total_num_frames": md.total_num_frames,
                      "fps": md.fps, "duration": md.duration, "width": md.width,
                      "height": md.height, "indices": [int(i) for i in md.frames_indices],
                      "timestamps": md.timestamps,
                      "mean_rgb": [[float(frames[k][..., c].mean()) for c in range(3)]
                                   for k in range(len(frames))],
                      "first_frame_rgb": frames[0].reshape(-1).tolist(),
                      "prompt_seq_1": video_prompt(1, md)})
    with open(os.path.join(GOLDENS, "video", "sampling.json"), "w") as f:
        json.dump({"cases": cases, "files": files}, f)
        f.write("\n")
    with open(os.path.join(GOLDENS, "video", "prompts.json"), "w") as f:
        json.dump(prompts, f, ensure_ascii=False, indent=0)
        f.write("\n")
    numbers = list(range(0, 1201)) + [1999, 2000, 2001, 9999, 10000, 12345, 99999, 100000,
                                      100001, 123456, 999999, 1000000, 1000001, 1234567]
    with open(os.path.join(GOLDENS, "video", "num2words.json"), "w") as f:
        json.dump({str(n): num2words(n) for n in numbers}, f, indent=0)
        f.write("\n")
    print(f"wrote {len(cases)} sampling cases, {len(prompts)} prompts, {len(files)} file cases, "
          f"{len(numbers)} number words")


def main():
    write_fixture()
    write_chat_goldens()
    if "--video" in sys.argv or not os.path.exists(VIDEO):
        write_video()
    write_video_goldens()


if __name__ == "__main__":
    main()
