#!/usr/bin/env python3
"""`minivlm serve` through the official `openai` client (and raw HTTP for what no client sends).

test_openai.py --bin BUILD/bin --model MODEL_DIR --data DATA_DIR

MODEL_DIR answers questions about the images of DATA_DIR (tests/serve/make_model.sh). Every greedy
reply is compared with what `infer --greedy` prints for the same model, prompt and image; batched
replies with the same requests sent one at a time. Exit status 0 when every check passes; 77 when
the openai package is missing.
"""
import argparse
import base64
import http.client
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

from serve_util import (Checks, Server, data_url, eval_questions, image_message, infer_greedy)

try:
    import openai
except ImportError:
    print("SKIP: the openai package is not installed (scripts/setup.sh installs it)")
    sys.exit(77)

MODEL = "model"


def client_of(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                         timeout=120)


def png_header_only(width, height):
    """A PNG whose header says width × height, with a truncated body: its size is read, never its
    pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk +
            struct.pack(">I", zlib.crc32(chunk)) + b"\x00\x00\x00\x10IDAT" + b"\x00" * 16)


def streamed_text(stream):
    """(text, finish_reason, usage) of a streamed completion."""
    text, finish, usage, roles = "", None, None, 0
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.role:
                roles += 1
            if c.delta.content:
                text += c.delta.content
            if c.finish_reason:
                finish = c.finish_reason
    assert roles == 1, f"{roles} chunks carried the role"
    return text, finish, usage


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    a = ap.parse_args()
    images_dir = os.path.join(a.data, "images")
    pairs = eval_questions(a.data, 8)
    question, image = pairs[0]
    expected = {}

    def expect(q, img, extra=()):
        key = (q, img, tuple(extra))
        if key not in expected:
            expected[key] = infer_greedy(a.bin, a.model, q, img, extra=extra)
        return expected[key]

    server = Server(a.bin, a.model, "--max-batch", "8", "--context", "256", "--max-image-bytes",
                    "400000", "--max-body-mb", "2", "--allow-files", images_dir)
    client = client_of(server)
    checks = Checks()

    def models():
        ids = [m.id for m in client.models.list().data]
        assert ids == [MODEL], ids

    def plain_with_image():
        want = expect(question, image)
        r = client.chat.completions.create(model=MODEL, messages=image_message(question, image),
                                           temperature=0, max_tokens=32)
        assert r.choices[0].message.content == want, (r.choices[0].message.content, want)
        assert r.choices[0].finish_reason == "stop", r.choices[0].finish_reason
        assert r.choices[0].message.role == "assistant"
        u = r.usage
        assert u.prompt_tokens > 16 and u.completion_tokens > 0, u  # the image's tokens count
        assert u.total_tokens == u.prompt_tokens + u.completion_tokens, u
        assert r.model == MODEL and r.id.startswith("chatcmpl-"), (r.model, r.id)

    def repeated_image_not_encoded_again():
        before = server.health()["vision_cache"]
        for _ in range(2):
            client.chat.completions.create(model=MODEL, temperature=0, max_tokens=4,
                                           messages=image_message("Where is it?", pairs[7][1]))
        after = server.health()["vision_cache"]
        assert after["misses"] - before["misses"] <= 1, (before, after)
        assert after["hits"] - before["hits"] >= 1, (before, after)

    def streamed_with_image():
        want = expect(question, image)
        text, finish, usage = streamed_text(client.chat.completions.create(
            model=MODEL, messages=image_message(question, image), temperature=0, max_tokens=32,
            stream=True, stream_options={"include_usage": True}))
        assert text == want, (text, want)
        assert finish == "stop", finish
        assert usage is not None and usage.completion_tokens > 0, usage

    def image_changes_the_answer():
        # One question, eight held-out images: each reply is infer's for that image, and they are
        # not all the same (the server reads the picture; 12 tokens each, past the end of turn).
        got = set()
        q = "Where is the circle?"
        for _, img in pairs:
            r = client.chat.completions.create(model=MODEL, messages=image_message(q, img),
                                               temperature=0, max_tokens=12)
            assert r.choices[0].message.content == expect(q, img), img
            r = client.chat.completions.create(model=MODEL, messages=image_message(q, img),
                                               temperature=0, max_tokens=12,
                                               extra_body={"ignore_eos": True})
            got.add(r.choices[0].message.content)
        assert len(got) > 1, got

    def text_only_and_system():
        want = expect("Describe the picture.", None)
        r = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Describe the picture."}],
            temperature=0, max_tokens=32)
        assert r.choices[0].message.content == want, (r.choices[0].message.content, want)
        want = expect(question, image, ("--system", "You are a careful assistant."))
        r = client.chat.completions.create(
            model=MODEL, temperature=0, max_tokens=32,
            messages=[{"role": "system", "content": "You are a careful assistant."}] +
            image_message(question, image))
        assert r.choices[0].message.content == want, (r.choices[0].message.content, want)

    def file_url_under_allowed_dir():
        want = expect(question, image)
        for url in ("file://" + os.path.abspath(image), os.path.abspath(image)):
            r = client.chat.completions.create(model=MODEL, temperature=0, max_tokens=32, messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                             {"type": "text", "text": question}]}])
            assert r.choices[0].message.content == want, url

    def concurrent_streams_equal_infer():
        wants = [expect(q, img) for q, img in pairs]
        before = server.health()
        results = [None] * len(pairs)
        barrier = threading.Barrier(len(pairs))

        def one(i):
            q, img = pairs[i]
            barrier.wait()
            results[i] = streamed_text(client.chat.completions.create(
                model=MODEL, messages=image_message(q, img), temperature=0, max_tokens=32,
                stream=True))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(pairs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        for i, (want, got) in enumerate(zip(wants, results)):
            assert got is not None, f"client {i} did not finish"
            assert got[0] == want and got[1] == "stop", (i, got, want)
        after = server.health()
        steps = after["steps"] - before["steps"]
        rows = after["rows_total"] - before["rows_total"]
        print(f"  8 clients: {steps} decode steps, {rows / max(steps, 1):.2f} rows per step")
        assert after["rows_max"] >= 2, after

    def batched_equals_one_at_a_time():
        reqs = [dict(model=MODEL, messages=image_message(q, img), temperature=0, max_tokens=40,
                     extra_body={"ignore_eos": True}) for q, img in pairs]
        alone = [client.chat.completions.create(**r) for r in reqs]
        for r in alone:
            assert r.usage.completion_tokens == 40 and r.choices[0].finish_reason == "length", r
        before = server.health()
        together = [None] * len(reqs)
        barrier = threading.Barrier(len(reqs))

        def one(i):
            barrier.wait()
            together[i] = client.chat.completions.create(**reqs[i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(reqs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        after = server.health()
        for i in range(len(reqs)):
            assert together[i].choices[0].message.content == alone[i].choices[0].message.content, i
        steps = after["steps"] - before["steps"]
        rows = after["rows_total"] - before["rows_total"]
        print(f"  8 × 40 tokens together: {steps} decode steps, {rows / steps:.2f} rows per step")
        assert rows / steps > 1.5, (steps, rows)

    def seeded_sampling_repeats():
        kw = dict(model=MODEL, messages=image_message(question, image), temperature=1.5, top_p=1,
                  max_tokens=24, seed=1234, extra_body={"ignore_eos": True})
        one = client.chat.completions.create(**kw).choices[0].message.content
        two = client.chat.completions.create(**kw).choices[0].message.content
        assert one == two, (one, two)
        others = {client.chat.completions.create(**{**kw, "seed": s}).choices[0].message.content
                  for s in range(5)}
        assert len(others) > 1, others  # the seed matters: sampling is not greedy

    def stop_sequences():
        want = expect(question, image)
        assert len(want) >= 2, want
        stop = want[-1]
        cut = want[:want.index(stop)]
        r = client.chat.completions.create(model=MODEL, messages=image_message(question, image),
                                           temperature=0, max_tokens=32, stop=[stop, "zzzz"])
        assert r.choices[0].message.content == cut and r.choices[0].finish_reason == "stop", r
        text, finish, _ = streamed_text(client.chat.completions.create(
            model=MODEL, messages=image_message(question, image), temperature=0, max_tokens=32,
            stop=stop, stream=True))
        assert text == cut and finish == "stop", (text, finish)

    def max_tokens_is_length():
        r = client.chat.completions.create(model=MODEL, messages=image_message(question, image),
                                           temperature=0, max_completion_tokens=1,
                                           extra_body={"ignore_eos": True})
        assert r.choices[0].finish_reason == "length", r
        assert r.usage.completion_tokens == 1, r.usage

    def malformed_requests():
        big = base64.b64encode(os.urandom(450_000)).decode()  # over --max-image-bytes
        huge_png = base64.b64encode(png_header_only(12000, 12000)).decode()  # 144 M pixels
        not_image = base64.b64encode(b"hello, this is not an image at all").decode()
        with open(image, "rb") as f:
            truncated = base64.b64encode(f.read()[:60]).decode()
        good_url = data_url(image)

        def user(content):
            return {"model": MODEL, "messages": [{"role": "user", "content": content}]}

        def img(url):
            return user([{"type": "image_url", "image_url": {"url": url}},
                         {"type": "text", "text": "What?"}])

        long_prompt = " ".join(["shape"] * 400)
        cases = [
            ("not JSON", "{", 400), ("truncated JSON", '{"messages": [', 400),
            ("empty body", "", 400), ("JSON with junk after", '{"messages": []} x', 400),
            ("bare word", "hello", 400), ("array body", "[]", 400), ("number body", "42", 400),
            ("number past a double", '{"messages": 84E44444}', 400),
            ("nested 100000 deep", "[" * 100000 + "]" * 100000, 400),
            ("string body", '"hi"', 400),
            ("missing messages", {"model": MODEL}, 400), ("empty object", {}, 400),
            ("messages a string", {"messages": "hi"}, 400),
            ("messages a number", {"messages": 3}, 400),
            ("messages an object", {"messages": {}}, 400),
            ("messages empty", {"messages": []}, 400),
            ("message a number", {"messages": [1]}, 400),
            ("message without role", {"messages": [{"content": "hi"}]}, 400),
            ("role a number", {"messages": [{"role": 5, "content": "hi"}]}, 400),
            ("unknown role", {"messages": [{"role": "robot", "content": "hi"}]}, 400),
            ("message without content", {"messages": [{"role": "user"}]}, 400),
            ("no user message", {"messages": [{"role": "system", "content": "hi"}]}, 400),
            ("content a number", user(5), 400), ("content an object", user({"a": 1}), 400),
            ("part a number", user([5]), 400),
            ("part of unknown type", user([{"type": "audio", "audio": "x"}]), 400),
            ("text part without text", user([{"type": "text"}]), 400),
            ("text a number", user([{"type": "text", "text": 3}]), 400),
            ("image_url a string", user([{"type": "image_url", "image_url": good_url}]), 400),
            ("image_url without url", user([{"type": "image_url", "image_url": {}}]), 400),
            ("http image URL", img("https://example.com/cat.png"), 400),
            ("data URL without base64", img("data:image/png,abc"), 400),
            ("broken base64", img("data:image/png;base64,@@@not-base64@@@"), 400),
            ("base64 of a non-image", img("data:image/png;base64," + not_image), 400),
            ("truncated image", img("data:image/png;base64," + truncated), 400),
            ("image over the byte limit", img("data:image/png;base64," + big), 413),
            ("image over the pixel limit", img("data:image/png;base64," + huge_png), 413),
            ("file outside the allowed directory", img("file:///etc/passwd"), 400),
            ("image in an assistant message", {"messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "image_url",
                                                   "image_url": {"url": good_url}}]}]}, 400),
            ("placeholder in the text", user("<image> what is it?"), 400),
            ("unknown field", {**user("hi"), "frobnicate": True}, 400),
            ("tools", {**user("hi"), "tools": [{"type": "function"}]}, 400),
            ("unknown model", {**user("hi"), "model": "gpt-4o"}, 404),
            ("temperature a string", {**user("hi"), "temperature": "hot"}, 400),
            ("temperature out of range", {**user("hi"), "temperature": 7}, 400),
            ("top_p negative", {**user("hi"), "top_p": -1}, 400),
            ("max_tokens zero", {**user("hi"), "max_tokens": 0}, 400),
            ("max_tokens a float", {**user("hi"), "max_tokens": 1.5}, 400),
            ("n = 2", {**user("hi"), "n": 2}, 400),
            ("stream a string", {**user("hi"), "stream": "yes"}, 400),
            ("five stop sequences", {**user("hi"), "stop": ["a", "b", "c", "d", "e"]}, 400),
            ("logprobs", {**user("hi"), "logprobs": True}, 400),
            ("prompt over the context", user(long_prompt), 400),
            ("prompt + max_tokens over the context", {**user("hi"), "max_tokens": 250}, 400),
            ("body over the limit", json.dumps(user("x" * (3 << 20))), 413),
        ]
        assert len(cases) >= 50, len(cases)
        bad = []
        for name, body, status in cases:
            code, reply = server.request("POST", "/v1/chat/completions", body)
            ok = (code == status and isinstance(reply, dict) and isinstance(reply.get("error"), dict)
                  and isinstance(reply["error"].get("message"), str) and reply["error"]["message"]
                  and "type" in reply["error"])
            if not ok:
                bad.append(f"{name}: {code} {str(reply)[:200]}")
        for path, method, status in (("/v1/nothing", "GET", 404), ("/v1/chat/completions", "GET", 405)):
            code, reply = server.request(method, path)
            if code != status or "error" not in reply:
                bad.append(f"{method} {path}: {code} {reply}")
        assert not bad, "\n  ".join([""] + bad)
        assert server.proc.poll() is None, "the server died"
        assert server.health()["status"] == "ok"
        r = client.chat.completions.create(model=MODEL, messages=image_message(question, image),
                                           temperature=0, max_tokens=32)
        assert r.choices[0].message.content == expect(question, image)
        print(f"  {len(cases) + 2} malformed requests, each a 4xx JSON error")

    def disconnect_frees_the_row():
        before = server.health()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        body = {"model": MODEL, "messages": image_message(question, image), "max_tokens": 200,
                "temperature": 0, "ignore_eos": True, "stream": True}
        conn.request("POST", "/v1/chat/completions", json.dumps(body),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200
        r.fp.readline()  # the first event has come: the request is decoding
        conn.sock.close()
        conn.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            h = server.health()
            if h["cancelled"] > before["cancelled"] and h["active"] == 0:
                break
            time.sleep(0.05)
        h = server.health()
        assert h["cancelled"] == before["cancelled"] + 1 and h["active"] == 0, (before, h)

    for name, fn in [("models", models), ("plain_with_image", plain_with_image),
                     ("streamed_with_image", streamed_with_image),
                     ("repeated_image_not_encoded_again", repeated_image_not_encoded_again),
                     ("image_changes_the_answer", image_changes_the_answer),
                     ("text_only_and_system", text_only_and_system),
                     ("file_url_under_allowed_dir", file_url_under_allowed_dir),
                     ("concurrent_streams_equal_infer", concurrent_streams_equal_infer),
                     ("batched_equals_one_at_a_time", batched_equals_one_at_a_time),
                     ("seeded_sampling_repeats", seeded_sampling_repeats),
                     ("stop_sequences", stop_sequences),
                     ("max_tokens_is_length", max_tokens_is_length),
                     ("malformed_requests", malformed_requests),
                     ("disconnect_frees_the_row", disconnect_frees_the_row)]:
        checks.run(name, fn)
    def server_exits_0():
        code = server.stop()
        assert code == 0, f"exit status {code}\n{server.log[-3000:]}"

    checks.run("server_exits_0", server_exits_0)

    # A server of one row and a queue of one: the third request at once is refused (429), and
    # SIGTERM lets the streams in flight finish.
    small = Server(a.bin, a.model, "--max-batch", "1", "--max-queue", "1")
    small_client = client_of(small)

    def queue_full_is_429():
        results = []
        barrier = threading.Barrier(6)

        def one():
            barrier.wait()
            results.append(small.request("POST", "/v1/chat/completions", {
                "model": MODEL, "messages": [{"role": "user", "content": "Count."}],
                "max_tokens": 700, "ignore_eos": True}))

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        # One row and one place in the queue: at most two are taken (fewer when the second
        # arrives before the engine has taken the first out of the queue), the rest refused.
        codes = sorted(c for c, _ in results)
        assert 1 <= codes.count(200) <= 2 and codes.count(429) == 6 - codes.count(200), codes
        for c, reply in results:
            if c == 429:
                assert reply["error"]["code"] == "queue_full", reply
            else:
                assert c == 200 and reply["usage"]["completion_tokens"] == 700, (c, reply)

    def sigterm_finishes_streams():
        stream = small_client.chat.completions.create(
            model=MODEL, messages=image_message(question, image), max_tokens=600, temperature=0,
            stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
        it = iter(stream)
        next(it)
        small.proc.send_signal(15)
        text, finish, usage = "", None, None
        for chunk in it:
            if chunk.usage is not None:
                usage = chunk.usage
            for c in chunk.choices:
                text += c.delta.content or ""
                finish = c.finish_reason or finish
        assert finish == "length" and usage.completion_tokens == 600, (finish, usage)
        code = small.stop()
        assert code == 0, (code, small.log[-2000:])
        assert "serve: stopped" in small.log, small.log[-2000:]

    checks.run("queue_full_is_429", queue_full_is_429)
    checks.run("sigterm_finishes_streams", sigterm_finishes_streams)
    small.stop()

    # A timeout shorter than any request: 408, as OpenAI's error JSON.
    hasty = Server(a.bin, a.model, "--timeout", "0.000001")

    def timeout_is_408():
        for stream in (False, True):  # a stream that never began fails with its own status too
            code, reply = hasty.request("POST", "/v1/chat/completions",
                                        {"messages": image_message(question, image),
                                         "stream": stream})
            assert code == 408 and reply["error"]["code"] == "timeout", (stream, code, reply)

    checks.run("timeout_is_408", timeout_is_408)
    hasty.stop()

    # On the emulated CUDA device the op graph decodes, each row on its own view of the cache.
    emu = Server(a.bin, a.model, "--device", "cuda-emu", "--max-batch", "4")
    emu_client = client_of(emu)

    def cuda_emu_concurrent_equal_infer():
        # The device computes in bf16 by default, and the startup line says so.
        assert "on cuda-emu in bf16;" in emu.log and "bf16 KV cache" in emu.log, emu.log
        wants = [infer_greedy(a.bin, a.model, q, img, extra=("--device", "cuda-emu"))
                 for q, img in pairs[:3]]
        got = [None] * 3

        def one(i):
            q, img = pairs[i]
            got[i] = emu_client.chat.completions.create(
                model=MODEL, messages=image_message(q, img), temperature=0,
                max_tokens=32).choices[0].message.content

        threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert got == wants, (got, wants)

    checks.run("cuda_emu_concurrent_equal_infer", cuda_emu_concurrent_equal_infer)
    emu.stop()

    # The other families: minimind3-v (SigLIP tower, MLP projector, mixture-of-experts layers,
    # MiniMind-3's chat template), trained for a few steps so that it says more than one token;
    # SmolVLM (its own chat template, each photo split into several tiles), random weights.
    fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    photos = [os.path.join(fixtures, "images", f) for f in (
        "image-01-golden-dog-balloons.jpg", "image-02-rainbow-umbrella-street.jpg",
        "image-04-yellow-car.jpg")]
    work = tempfile.mkdtemp(prefix="serve_families_")

    def family_equals_infer(model, requests):
        wants = [infer_greedy(a.bin, model, q, img, max_new_tokens=12) for q, img in requests]
        fam = Server(a.bin, model)
        try:
            c = client_of(fam)
            name = c.models.list().data[0].id
            got = [None] * len(requests)

            def one(i):
                q, img = requests[i]
                got[i] = c.chat.completions.create(
                    model=name, messages=image_message(q, img), temperature=0,
                    max_tokens=12).choices[0].message.content

            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(300)
            assert got == wants, (got, wants)
            assert len(set(got)) > 1 or len(got[0].strip()) > 1, got  # not one repeated token
        finally:
            assert fam.stop() == 0, fam.log[-2000:]

    def minimind3v_equals_infer():
        init, trained = os.path.join(work, "m3v-init"), os.path.join(work, "m3v")
        source = os.path.dirname(fixtures)
        for cmd in ([os.path.join(a.bin, "minivlm"), "init-model", "--config",
                     os.path.join(fixtures, "test-model-3v.json"), "--tokenizer",
                     os.path.join(source, "..", "data", "tokenizer", "tokenizer.json"),
                     "--out", init, "--seed", "3"],
                    [os.path.join(a.bin, "train_sft"), "--model", init, "--data",
                     os.path.join(a.data, "sft.jsonl"), "--images", images_dir, "--out", trained,
                     "--lr", "3e-3", "--warmup-steps", "5", "--batch-size", "16",
                     "--max-steps", "60", "--log-every", "60"]):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        family_equals_infer(os.path.join(trained, "final"), pairs[:3])

    def smolvlm_equals_infer():
        family_equals_infer(os.path.join(fixtures, "smolvlm-tiny"),
                            [("Describe the image.", p) for p in photos])

    checks.run("minimind3v_equals_infer", minimind3v_equals_infer)
    checks.run("smolvlm_equals_infer", smolvlm_equals_infer)
    shutil.rmtree(work, ignore_errors=True)
    checks.exit()


if __name__ == "__main__":
    main()
