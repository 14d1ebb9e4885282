"""Load one page in headless Chromium and report what a person would get, in one browser launch.

Usage: chromium_cdp.py CHROMIUM URL SCREENSHOT.png

Speaks the DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out; NUL-separated JSON),
so console messages keep their level: prints one JSON object on stdout with the rendered DOM
(after scripts ran), every console message and uncaught exception, every browser log entry
(blocked or failed loads, CSP violations), every network request the page made, what the page
shows with JavaScript disabled (reloaded in the same browser), and writes a full-page PNG
screenshot. Standard library only.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

chromium, url, shot = sys.argv[1], sys.argv[2], sys.argv[3]
to_child_r, to_child_w = os.pipe()
from_child_r, from_child_w = os.pipe()
profile = tempfile.mkdtemp(prefix="flux-compat-chromium-")


def child_fds():
    # Through high numbers first: the pipe ends may themselves be 3 or 4.
    os.dup2(to_child_r, 100)
    os.dup2(from_child_w, 101)
    os.dup2(100, 3)
    os.dup2(101, 4)


proc = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
     "--disable-extensions", "--disable-background-networking", "--disable-sync",
     "--disable-component-update", "--mute-audio", "--hide-scrollbars",
     "--user-data-dir=" + profile, "--remote-debugging-pipe", "about:blank"],
    preexec_fn=child_fds, pass_fds=(3, 4, to_child_r, from_child_w),
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
os.close(to_child_r)
os.close(from_child_w)
deadline = time.time() + 60
buf = b""
next_id = 0
events = []


def send(method, params=None, session=None):
    global next_id
    next_id += 1
    msg = {"id": next_id, "method": method, "params": params or {}}
    if session:
        msg["sessionId"] = session
    os.write(to_child_w, json.dumps(msg).encode() + b"\0")
    return next_id


def read_message():
    global buf
    while b"\0" not in buf:
        if time.time() > deadline:
            raise TimeoutError("Chromium did not answer within 60 s")
        chunk = os.read(from_child_r, 1 << 20)
        if not chunk:
            raise EOFError("Chromium closed the DevTools pipe: "
                           + proc.stderr.read().decode(errors="replace")[-2000:])
        buf += chunk
    raw, buf = buf.split(b"\0", 1)
    return json.loads(raw)


def call(method, params=None, session=None):
    want = send(method, params, session)
    while True:
        m = read_message()
        if m.get("id") == want:
            if "error" in m:
                raise RuntimeError(f"{method}: {m['error']}")
            return m.get("result", {})
        events.append(m)


def wait_for(method, session):
    for i, m in enumerate(events):
        if m.get("method") == method and m.get("sessionId") == session:
            return events.pop(i)
    while True:
        m = read_message()
        if m.get("method") == method and m.get("sessionId") == session:
            return m
        events.append(m)


NO_JS_PROBE = """JSON.stringify({
  filterShown: (function () { var f = document.getElementById("filter");
                              return !!f && getComputedStyle(f).display !== "none"; })(),
  visibleSections: Array.prototype.filter.call(document.querySelectorAll("section.cell"),
                                               function (s) { return s.offsetParent !== null; }).length,
  gridCells: document.querySelectorAll("table.grid td[data-outcome]").length
})"""

try:
    targets = call("Target.getTargets")["targetInfos"]
    page = next(t for t in targets if t["type"] == "page")
    session = call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        call(domain + ".enable", session=session)
    call("Emulation.setDeviceMetricsOverride",
         {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)
    call("Page.navigate", {"url": url}, session)
    wait_for("Page.loadEventFired", session)
    dom = call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML",
                                    "returnByValue": True}, session)["result"]["value"]
    height = call("Runtime.evaluate", {"expression": "document.documentElement.scrollHeight",
                                       "returnByValue": True}, session)["result"]["value"]
    png = call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                          "clip": {"x": 0, "y": 0, "width": 1280,
                                                   "height": min(int(height), 16000), "scale": 1}},
               session)["data"]
    with open(shot, "wb") as f:
        f.write(base64.b64decode(png))
    # The same page with JavaScript off, as a reader with scripts disabled sees it.
    call("Emulation.setScriptExecutionDisabled", {"value": True}, session)
    call("Page.reload", {"ignoreCache": True}, session)
    wait_for("Page.loadEventFired", session)
    no_js = call("Runtime.evaluate", {"expression": NO_JS_PROBE, "returnByValue": True},
                 session)["result"]["value"]
    console, logs, requests = [], [], []
    for m in events:
        p = m.get("params", {})
        if m.get("method") == "Runtime.consoleAPICalled":
            console.append({"level": p["type"],
                            "text": " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])})
        elif m.get("method") == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            console.append({"level": "exception",
                            "text": d.get("exception", {}).get("description", d.get("text", ""))})
        elif m.get("method") == "Log.entryAdded":
            logs.append({"level": p["entry"]["level"], "text": p["entry"]["text"]})
        elif m.get("method") == "Network.requestWillBeSent":
            requests.append(p["request"]["url"])
    print(json.dumps({"dom": dom, "console": console, "log": logs, "requests": requests,
                      "noScript": json.loads(no_js)}))
finally:
    try:
        send("Browser.close")
        proc.wait(timeout=10)
    except Exception:
        proc.kill()
        proc.wait()
    shutil.rmtree(profile, ignore_errors=True)
