#!/usr/bin/env python3
"""Opens a URL in headless Chromium, lets it run in real time, then saves
the rendered DOM and a screenshot: the browser half of status_page.sh.

Speaks the DevTools protocol over --remote-debugging-pipe (JSON messages
ended by NUL on file descriptors 3 and 4), so it needs nothing beyond the
standard library: no websocket client, no driver.

Usage: status_page_browse.py URL SECONDS DOM_OUT PNG_OUT PROFILE_DIR
"""
import base64
import json
import os
import subprocess
import sys
import time

url, seconds, dom_out, png_out, profile = sys.argv[1], float(sys.argv[2]), *sys.argv[3:6]

to_browser_r, to_browser_w = os.pipe()
from_browser_r, from_browser_w = os.pipe()


def child_fds():
    """In the child: Chromium reads commands on fd 3 and writes replies on
    fd 4 (dup2 clears close-on-exec; a pipe already on 3 is made
    inheritable instead)."""
    for fd, want in ((to_browser_r, 3), (from_browser_w, 4)):
        if fd == want:
            os.set_inheritable(fd, True)
        else:
            os.dup2(fd, want)


os.makedirs(profile, exist_ok=True)
browser = subprocess.Popen(
    [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--window-size=1280,900", "--remote-debugging-pipe",
        "about:blank",
    ],
    preexec_fn=child_fds,
    close_fds=False,
    stdout=subprocess.DEVNULL,
    stderr=open(os.path.join(profile, "chromium.err"), "wb"),
)
os.close(to_browser_r)
os.close(from_browser_w)
writer = os.fdopen(to_browser_w, "wb", buffering=0)
reader = os.fdopen(from_browser_r, "rb", buffering=0)
pending = b""
next_id = 0


def send(method, params=None, session=None):
    """Sends one command and returns its result (events in between are skipped)."""
    global next_id, pending
    next_id += 1
    message = {"id": next_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    writer.write(json.dumps(message).encode() + b"\0")
    deadline = time.time() + 60
    while time.time() < deadline:
        while b"\0" in pending:
            raw, pending = pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == next_id:
                if "error" in reply:
                    sys.exit(f"{method}: {reply['error']}")
                return reply.get("result", {})
        chunk = reader.read(1 << 16)
        if not chunk:
            sys.exit(f"chromium closed the pipe during {method}")
        pending += chunk
    sys.exit(f"{method}: no reply in 60 s")


try:
    target = send("Target.createTarget", {"url": url})["targetId"]
    session = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    time.sleep(seconds)  # real time: the page polls /status once a second
    html = send(
        "Runtime.evaluate",
        {"expression": "document.documentElement.outerHTML", "returnByValue": True},
        session,
    )["result"]["value"]
    with open(dom_out, "w", encoding="utf-8") as f:
        f.write(html)
    shot = send("Page.captureScreenshot", {"format": "png"}, session)["data"]
    with open(png_out, "wb") as f:
        f.write(base64.b64decode(shot))
    send("Browser.close")
finally:
    try:
        browser.wait(timeout=10)
    except subprocess.TimeoutExpired:
        browser.kill()
