"""Open an HTML page in headless Chromium (Debian's ``chromium``) and say what a person would see.

Drives the browser over the DevTools protocol (a websocket, ``websocket-client``): the page is
opened from a file URL with the network switched off, every console error, uncaught exception
and network request is recorded, each ``<div class="chart">`` is checked for drawn marks, and a
PNG screenshot of the whole page is saved. Used by the browser test and ``make screenshot``;
not part of the installed package.

    python -m dev.browser PAGE.html --screenshot PAGE.png
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

#: What every chart must show: its plot's size, its SVG layers, and the drawn marks Plotly makes
#: for lines, markers, bars and heatmaps (a heatmap is an <image> inside the SVG).
_CHARTS_JS = r"""
Array.from(document.querySelectorAll('div.chart')).map(chart => {
  const plot = chart.querySelector('.js-plotly-plot');
  const box = plot ? plot.getBoundingClientRect() : {width: 0, height: 0};
  const marks = chart.querySelectorAll(
    '.scatterlayer path.js-line, .scatterlayer path.point, .barlayer path, .heatmaplayer image, .hm image');
  const drawn = Array.from(marks).filter(m => {
    if (m.tagName === 'image') { return (m.getAttribute('href') || m.getAttribute('xlink:href') || '').length > 100; }
    const d = m.getAttribute('d') || ''; return d.length > 0 && d !== 'M0,0Z';
  }).length;
  return {title: chart.dataset.title || '', width: box.width, height: box.height,
          svgs: chart.querySelectorAll('svg.main-svg').length, marks: drawn,
          empty: chart.querySelectorAll('.main-svg').length === 0};
})
"""


@dataclass
class PageCheck:
    """What the browser saw."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def external_requests(self) -> list[str]:
        """Requests that left the file: anything but the page itself, data: and blob: URLs."""
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:", "about:"))]

    @property
    def undrawn_charts(self) -> list[dict[str, Any]]:
        return [c for c in self.charts if not (c["svgs"] > 0 and c["marks"] > 0 and c["width"] > 0 and c["height"] > 0)]


def chromium_binary() -> str:
    """Debian's chromium (``make test`` installs it via scripts/install-system-deps.sh)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no chromium on PATH: install Debian's chromium package "
                            "(bash scripts/install-system-deps.sh does)")


class _DevTools:
    """A websocket session with one page target; events are kept until read."""

    def __init__(self, url: str):
        self.socket = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        call_id = self.next_id
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout:.0f}s")
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                message = json.loads(self.socket.recv())
            except websocket.WebSocketTimeoutException:
                continue  # the deadline check above says so
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()


def check_page(page: str | os.PathLike[str], screenshot: str | os.PathLike[str] | None = None,
               width: int = 1280, timeout: float = 120.0, draw_timeout: float | None = None) -> PageCheck:
    """Open ``page`` offline in headless Chromium; return what it logged, fetched and drew.

    ``timeout`` bounds starting the browser and loading the page (a shared, busy machine can be
    slow); ``draw_timeout`` (default: ``timeout``) how long to wait for every chart to draw.
    """
    draw_timeout = timeout if draw_timeout is None else draw_timeout
    path = Path(page).resolve()
    url = path.as_uri()
    profile = Path(tempfile.mkdtemp(prefix="evaljobs-chromium-"))
    command = [
        chromium_binary(), "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
        "--disable-extensions", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--metrics-recording-only", "--mute-audio",
        # No network at all: names resolve nowhere and any proxied request is refused.
        "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
        f"--user-data-dir={profile}", "--remote-debugging-port=0", f"--window-size={width},900", "about:blank",
    ]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    check = PageCheck(url)
    try:
        port = _devtools_port(profile, process, timeout)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.load(response)
        target = next(t for t in targets if t.get("type") == "page")
        tools = _DevTools(target["webSocketDebuggerUrl"])
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                tools.call(f"{domain}.enable")
            tools.call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
                       uploadThroughput=-1)
            tools.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                       mobile=False)
            tools.call("Page.navigate", url=url)
            tools.wait_for("Page.loadEventFired", timeout)
            check.charts = _wait_for_charts(tools, draw_timeout)
            if screenshot is not None:
                height = int(tools.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
                tools.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                           mobile=False)
                time.sleep(1.0)  # Plotly's responsive charts re-lay themselves out after a resize
                check.charts = _wait_for_charts(tools, draw_timeout)
                shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                target_file = Path(screenshot)
                target_file.parent.mkdir(parents=True, exist_ok=True)
                target_file.write_bytes(base64.b64decode(shot["data"]))
                check.screenshot = target_file
            tools.evaluate("1")  # drain the events the page sent meanwhile
            for event in tools.events:
                _record(check, event)
        finally:
            tools.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return check


def _devtools_port(profile: Path, process: subprocess.Popen, timeout: float) -> int:
    """Chromium writes its DevTools port to DevToolsActivePort in the profile once it listens."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace").strip().splitlines() if process.stderr else []
            raise RuntimeError(f"chromium exited ({process.returncode}): {' | '.join(error[-3:])}")
        if marker.exists():
            lines = marker.read_text().splitlines()
            if lines and lines[0].strip().isdigit():
                return int(lines[0])
        time.sleep(0.05)
    raise TimeoutError(f"chromium did not open its DevTools port within {timeout:.0f}s")


def _wait_for_charts(tools: _DevTools, timeout: float) -> list[dict[str, Any]]:
    """The charts' state once every one has drawn (or as it is at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        charts = tools.evaluate(_CHARTS_JS) or []
        if all(c["marks"] > 0 for c in charts) or time.monotonic() > deadline:
            return charts
        time.sleep(0.2)


def _record(check: PageCheck, event: dict[str, Any]) -> None:
    method, params = event["method"], event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
        check.console_errors.append(f"console.{params['type']}: {text}")
    elif method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        description = details.get("exception", {}).get("description") or details.get("text", "")
        check.console_errors.append(f"uncaught: {description.splitlines()[0] if description else ''}")
    elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        check.console_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
    elif method == "Network.requestWillBeSent":
        check.requests.append(params["request"]["url"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page")
    parser.add_argument("--screenshot", metavar="PNG")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)
    check = check_page(args.page, args.screenshot, args.width)
    for chart in check.charts:
        print(f"chart {chart['title']!r}: {chart['marks']} mark(s), {chart['width']:.0f}x{chart['height']:.0f}")
    for error in check.console_errors:
        print(f"console error: {error}")
    for request in check.external_requests:
        print(f"network request: {request}")
    if check.screenshot:
        print(f"screenshot: {check.screenshot}")
    bad = check.console_errors or check.external_requests or check.undrawn_charts or not check.charts
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
