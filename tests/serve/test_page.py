#!/usr/bin/env python3
"""End-to-end test of the chat page that `minivlm serve` serves at `/`.

Starts `BIN/minivlm serve --model MODEL --port 0`, asks `BIN/infer` for the greedy answer to
(IMG, Q), then drives the page in headless Chromium: temperature 0, max tokens 32, the image
through the file input, Q sent with Enter. The streamed reply must equal infer's; the request
the page sent must carry the image's exact bytes. A second turn (a follow-up without an image,
sent with the Send button) must finish with a non-empty reply, no error shown, and a request
that carries the whole conversation. Screenshots and the browser console go to ARTIFACTS.

Exit status: 0 pass, 1 fail, 77 skip (no Chromium, chromedriver or selenium).
"""
import argparse
import base64
import json
import os
import re
import shutil
import sys
import time
import urllib.request

from serve_util import Server, infer_greedy

SKIP = 77
TURN_TIMEOUT_S = 120
READY_TIMEOUT_S = 180
MAX_TOKENS = 32
FOLLOW_UP = ("What else is in the picture?", "Answer briefly.")  # joined by Shift+Enter


class Failure(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def skip(msg):
    print("SKIP: " + msg, flush=True)
    sys.exit(SKIP)


def find_browser():
    """(chromium, chromedriver) paths, or skips."""
    chrome = os.environ.get("CHROME_BIN") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not chrome or not os.access(chrome, os.X_OK):
        skip("no Chromium (chromium, chromium-browser or google-chrome on PATH, or CHROME_BIN)")
    if not driver or not os.access(driver, os.X_OK):
        skip("no chromedriver (on PATH, or CHROMEDRIVER)")
    return chrome, driver


# Records the JSON bodies the page POSTs, so the test can check what it sent.
RECORD_REQUESTS = """
window.__requests = [];
const original = window.fetch;
window.fetch = function (url, init) {
  if (init && init.method === "POST" && typeof init.body === "string") window.__requests.push(init.body);
  return original.apply(this, arguments);
};
"""

ASSISTANT_STATE = """
return Array.from(document.querySelectorAll('.msg.assistant')).map(m => ({
  done: m.getAttribute('data-done') === '1',
  text: m.querySelector('.msg-text') ? m.querySelector('.msg-text').textContent : m.textContent,
  error: m.getAttribute('data-error') === '1' ?
      (m.querySelector('.msg-error') || m).textContent : null,
}));
"""

PAGE_ERROR = """
const e = document.getElementById('error');
return e && !e.hidden && e.textContent.trim() ? e.textContent : null;
"""


def wait_for_reply(driver, index):
    """Waits for assistant message number `index` to end; returns its state."""
    deadline = time.monotonic() + TURN_TIMEOUT_S
    while time.monotonic() < deadline:
        msgs = driver.execute_script(ASSISTANT_STATE)
        if len(msgs) > index and msgs[index]["done"]:
            return msgs[index]
        if len(msgs) <= index:
            page_error = driver.execute_script(PAGE_ERROR)
            if page_error:
                raise Failure("no reply; the page shows: " + page_error)
        time.sleep(0.1)
    msgs = driver.execute_script(ASSISTANT_STATE)
    raise Failure("assistant message %d did not finish within %d s (messages: %s)" %
                  (index + 1, TURN_TIMEOUT_S, json.dumps(msgs)[:2000]))


def check(cond, what):
    if not cond:
        raise Failure(what)


def drive(driver, url, args, model_name, expected):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    driver.get(url + "/")
    driver.execute_script(RECORD_REQUESTS)
    wait.until(lambda d: d.find_element(By.ID, "model-name").text.strip() == model_name)
    log("page: shows model %r" % model_name)

    if not driver.find_element(By.ID, "temperature").is_displayed():
        driver.find_element(By.ID, "settings-toggle").click()
    for field, value in (("temperature", "0"), ("max-tokens", str(MAX_TOKENS))):
        e = driver.find_element(By.ID, field)
        e.clear()
        e.send_keys(value)
        check(e.get_attribute("value") == value, "#%s holds %r, not %r" % (field, e.get_attribute("value"), value))

    # Turn 1: image + question, sent with Enter.
    driver.find_element(By.ID, "image-input").send_keys(os.path.abspath(args.image))
    wait.until(lambda d: d.find_element(By.ID, "image-preview").is_displayed())
    message = driver.find_element(By.ID, "message")
    message.send_keys(args.question)
    message.send_keys(Keys.ENTER)
    first = wait_for_reply(driver, 0)
    check(first["error"] is None, "turn 1: the page shows an error: %s" % first["error"])
    got = first["text"].strip()
    log("turn 1: page %r" % got)
    log("turn 1: infer %r" % expected)
    check(got == expected, "turn 1: the page's reply differs from infer's:\n  page:  %r\n  infer: %r" % (got, expected))

    requests = driver.execute_script("return window.__requests")
    check(len(requests) == 1, "turn 1: the page sent %d requests, not 1" % len(requests))
    body = json.loads(requests[0])
    check(body.get("stream") is True, "turn 1: the request has no \"stream\": true")
    check(body.get("temperature") == 0, "turn 1: temperature %r, not 0" % body.get("temperature"))
    check(body.get("max_tokens") == MAX_TOKENS, "turn 1: max_tokens %r" % body.get("max_tokens"))
    msgs = body.get("messages")
    check(isinstance(msgs, list) and len(msgs) == 1 and msgs[0].get("role") == "user",
          "turn 1: messages are not one user message: %s" % json.dumps(msgs)[:500])
    parts = msgs[0]["content"]
    check(isinstance(parts, list) and len(parts) == 2 and parts[0].get("type") == "image_url"
          and parts[1] == {"type": "text", "text": args.question},
          "turn 1: content is not [image_url, text]: %s" % json.dumps(parts)[:500])
    data_url = parts[0]["image_url"]["url"]
    m = re.match(r"data:image/[\w.+-]+;base64,(.*)$", data_url, re.S)
    check(m is not None, "turn 1: the image is not a data:image/...;base64 URL: %r" % data_url[:80])
    with open(args.image, "rb") as f:
        check(base64.b64decode(m.group(1)) == f.read(), "turn 1: the data URL's bytes are not the image file's")

    # Turn 2: a follow-up without an image, two lines (Shift+Enter), sent with the Send button.
    message.send_keys(FOLLOW_UP[0])
    message.send_keys(Keys.SHIFT, Keys.ENTER)
    message.send_keys(FOLLOW_UP[1])
    follow_up = "\n".join(FOLLOW_UP)
    check(message.get_attribute("value") == follow_up,
          "Shift+Enter: the message box holds %r" % message.get_attribute("value"))
    check(len(driver.execute_script(ASSISTANT_STATE)) == 1, "Shift+Enter sent the message")
    driver.find_element(By.ID, "send").click()
    second = wait_for_reply(driver, 1)
    check(second["error"] is None, "turn 2: the page shows an error: %s" % second["error"])
    log("turn 2: page %r" % second["text"].strip())
    check(second["text"].strip() != "", "turn 2: the reply is empty")
    page_error = driver.execute_script(PAGE_ERROR)
    check(page_error is None, "the page shows an error: %s" % page_error)

    requests = driver.execute_script("return window.__requests")
    check(len(requests) == 2, "turn 2: the page sent %d requests in all, not 2" % len(requests))
    msgs = json.loads(requests[1]).get("messages")
    check(isinstance(msgs, list) and len(msgs) == 3, "turn 2: %s messages, not 3" % (len(msgs) if isinstance(msgs, list) else msgs))
    check(msgs[0] == body["messages"][0], "turn 2: the first user message (with the image) changed")
    check(msgs[1].get("role") == "assistant" and msgs[1].get("content", "").strip() == expected,
          "turn 2: the history's assistant message is not turn 1's reply: %s" % json.dumps(msgs[1])[:500])
    check(msgs[2] == {"role": "user", "content": follow_up},
          "turn 2: the last message is not the follow-up: %s" % json.dumps(msgs[2])[:500])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="directory with minivlm and infer")
    ap.add_argument("--model", required=True, help="model directory")
    ap.add_argument("--image", required=True, help="image for the first turn")
    ap.add_argument("--question", required=True, help="question of the first turn")
    ap.add_argument("--artifacts", required=True, help="directory for screenshots and the console log")
    args = ap.parse_args()

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        skip("selenium is not installed (%s)" % e)
    chrome, chromedriver = find_browser()

    for p in (os.path.join(args.bin, "minivlm"), os.path.join(args.bin, "infer")):
        if not os.access(p, os.X_OK):
            print("FAIL: no executable %s" % p, flush=True)
            return 1
    os.makedirs(args.artifacts, exist_ok=True)
    shot = os.path.join(args.artifacts, "chat_page.png")
    console = os.path.join(args.artifacts, "console.log")

    server = driver = None
    failure = None
    try:
        expected = infer_greedy(args.bin, args.model, args.question, args.image,
                                max_new_tokens=MAX_TOKENS).strip()
        server = Server(args.bin, args.model, timeout=READY_TIMEOUT_S)
        url = server.url
        log("server: " + url)
        with urllib.request.urlopen(url + "/v1/models", timeout=30) as r:
            model_name = json.load(r)["data"][0]["id"]

        opts = webdriver.ChromeOptions()
        opts.binary_location = chrome
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,900", "--lang=en-US"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
        driver.set_page_load_timeout(30)
        drive(driver, url, args, model_name, expected)
    except Failure as e:
        failure = str(e)
    except Exception as e:  # selenium timeouts, unexpected replies
        failure = "%s: %s" % (type(e).__name__, e)
    finally:
        if driver is not None:
            try:
                driver.save_screenshot(shot)
                log("screenshot: " + shot)
                driver.set_window_size(400, 820)
                time.sleep(0.3)
                driver.save_screenshot(os.path.join(args.artifacts, "chat_page_narrow.png"))
            except Exception as e:
                log("no screenshot: %s" % e)
            try:
                with open(console, "w") as f:
                    for entry in driver.get_log("browser"):
                        f.write("%s %s\n" % (entry.get("level"), entry.get("message")))
            except Exception as e:
                log("no console log: %s" % e)
            try:
                driver.quit()
            except Exception:
                pass
        if server is not None:
            rc = server.stop(timeout=30)
            if rc != 0 and failure is None:
                failure = "the server exited with status %s after SIGTERM" % rc

    if failure is not None:
        print("FAIL: " + failure, flush=True)
        if server is not None:
            print("--- server stderr (tail) ---\n" + server.log[-4000:], flush=True)
        if os.path.exists(console):
            print("--- browser console: " + console, flush=True)
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
