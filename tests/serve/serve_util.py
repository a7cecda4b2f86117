"""Helpers of the serve tests: start `minivlm serve` on a free loopback port, run `infer`, talk
HTTP without a client library (for requests no client would send)."""
import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time


class Server:
    """`minivlm serve --model MODEL --port 0 ARGS`, started and waited for; stop() sends SIGTERM
    and returns the exit status. Its stderr is kept in .log."""

    def __init__(self, bin_dir, model, *args, timeout=120):
        self.proc = subprocess.Popen(
            [os.path.join(bin_dir, "minivlm"), "serve", "--model", model, "--port", "0", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.lines.append(line)
                m = re.search(r"serve: listening on http://[\d.]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not ready.wait(timeout) or self.port is None:
            self.proc.kill()
            raise RuntimeError("minivlm serve did not start:\n" + self.log)
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def log(self):
        return "".join(self.lines)

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "killed after a timeout"
        self.reader.join(5)
        return code

    def request(self, method, path, body=None, headers=None, timeout=120):
        """(status, parsed JSON or raw text) of one request on a fresh connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read().decode("utf-8", "replace")
        conn.close()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data

    def health(self):
        return self.request("GET", "/health")[1]


def infer_greedy(bin_dir, model, prompt, image=None, max_new_tokens=32, extra=()):
    """The reply `infer --greedy` prints for the prompt (and image)."""
    cmd = [os.path.join(bin_dir, "infer"), "--model", model, "--prompt", prompt, "--greedy",
           "--max-new-tokens", str(max_new_tokens), *extra]
    if image:
        cmd += ["--image", image]
    r = subprocess.run(cmd, capture_output=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"infer failed: {r.stderr.decode(errors='replace')}")
    # Bytes that are no UTF-8 (a reply cut inside a character) read as U+FFFD, as in JSON replies.
    out = r.stdout.decode("utf-8", "replace")
    return out[:-1] if out.endswith("\n") else out  # infer ends the reply with one newline


def data_url(path):
    kind = "png" if path.endswith(".png") else "jpeg"
    with open(path, "rb") as f:
        return f"data:image/{kind};base64," + base64.b64encode(f.read()).decode()


def image_message(prompt, image):
    return [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url(image)}},
        {"type": "text", "text": prompt}]}]


def eval_questions(data_dir, n):
    """The first n held-out (question, image path) pairs of the dataset."""
    out = []
    with open(os.path.join(data_dir, "eval.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            question = r["conversations"][0]["content"].split("\n")[-1]
            out.append((question, os.path.join(data_dir, "images", r["image"])))
            if len(out) == n:
                break
    return out


class Checks:
    """A list of named checks; each failure is reported and the run goes on."""

    def __init__(self):
        self.failed = []
        self.passed = 0

    def run(self, name, fn, *args):
        t0 = time.time()
        try:
            fn(*args)
            self.passed += 1
            print(f"PASS {name} ({time.time() - t0:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every kind of failure
            self.failed.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)

    def exit(self):
        print(f"{self.passed} passed, {len(self.failed)} failed" +
              (": " + ", ".join(self.failed) if self.failed else ""))
        sys.exit(1 if self.failed else 0)
