"""The HTML pages in a real browser: Debian's headless Chromium opens them from a file URL with the
network switched off; no console error, no request but the file itself, every chart drawn. A PNG
screenshot of each page is saved under pytest's temporary directory (its path is printed; run with
``-s`` to see it). Chromium missing is a failure: ``make test`` installs it."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from dev import browser
from evaljobs.sinks import html

from tests.sinks.test_gate_html import gate_page_for_browser

pytestmark = pytest.mark.service  # a real browser process


def open_page(page: Path, screenshot: Path | None = None, draw_timeout: float | None = None) -> browser.PageCheck:
    try:
        browser.chromium_binary()
    except FileNotFoundError as exc:
        pytest.fail(f"{exc}; make test installs it")
    return browser.check_page(page, screenshot, draw_timeout=draw_timeout)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG file"
    return struct.unpack(">II", data[16:24])


def assert_drew_offline(page: Path, screenshot: Path) -> browser.PageCheck:
    check = open_page(page, screenshot)
    print(f"\nscreenshot of {page.name}: {screenshot}")
    titles = re.findall(r'<div class="chart" data-title="([^"]*)"', page.read_text())
    assert [c["title"] for c in check.charts] == titles, "every chart of the page was found"
    assert check.undrawn_charts == [], "every chart drew marks into its SVG"
    assert check.console_errors == []
    assert check.external_requests == [], "nothing was requested from the network"
    assert [r for r in check.requests if r.startswith("file:")] == [check.url], "only the file itself was read"
    width, height = png_size(screenshot)
    assert width == 1280 and height > 1000
    return check


def test_the_job_report_draws_in_headless_chromium_offline(fraud_report, tmp_path_factory) -> None:
    shot = tmp_path_factory.mktemp("screenshots") / "report.png"
    check = assert_drew_offline(fraud_report, shot)
    assert len(check.charts) >= 11
    # the heatmaps (drift, confusion) are images inside the SVG; the rest are paths
    assert all(c["marks"] >= 2 for c in check.charts)


def test_the_gate_page_draws_in_headless_chromium_offline(sqlite_url, tmp_path) -> None:
    page = gate_page_for_browser(sqlite_url, tmp_path)
    check = assert_drew_offline(page, tmp_path / "gate.png")
    assert len(check.charts) == 3


def test_the_browser_check_sees_errors_requests_and_empty_charts(tmp_path) -> None:
    """The checks above can fail: a page with each fault is caught."""
    go, _subplots, _offline = html.plotly_modules()
    faults = ('<script>console.error("a deliberate error")</script>'
              "<script>no_such_function()</script>"
              '<img src="https://example.com/tracker.png" alt="">')
    sections = [html.Section("drawn", "", go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))),
                html.Section("empty", "", go.Figure(), body=faults)]
    page = tmp_path / "faulty.html"
    page.write_text(html.page("faulty", [], sections, ""))
    check = open_page(page, draw_timeout=5)  # the empty chart never draws: do not wait long for it
    assert [c["title"] for c in check.undrawn_charts] == ["empty"]
    assert any("a deliberate error" in e for e in check.console_errors)
    assert any("no_such_function" in e for e in check.console_errors)
    assert check.external_requests == ["https://example.com/tracker.png"]
