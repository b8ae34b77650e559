"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) draws its charts."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from PIL import Image

from chaosmesh_ext.journal import load_journal
from chaosmesh_ext.journal.report import BREAKER_SERIES, PERCENTILES, render_html
from tests.journal.journals import FIXTURES
from tests.support.tools import require_tool

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _chromium(args: list[str], tmp: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [require_tool("chromium"), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        # Chromium leaves helpers (zygote, gpu) in its session: stop all of them.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _screenshot(page: Path, tmp: Path, height: int = 2600) -> dict[tuple[int, int, int], int]:
    png = tmp / f"{page.stem}.png"
    _chromium([f"--screenshot={png}", f"--window-size=1000,{height}", page.as_uri()], tmp)
    assert png.exists(), "chromium wrote no screenshot"
    with Image.open(png) as img:
        rgb = img.convert("RGB")
        counts: dict[tuple[int, int, int], int] = {}
        for count, colour in rgb.getcolors(maxcolors=1 << 20) or []:
            counts[colour] = count
    return counts


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def test_browser_parses_the_charts(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html([load_journal(FIXTURES / "mesh-deviated-121.json")]))
    dom = _chromium(["--dump-dom", page.as_uri()], tmp_path).stdout
    # The DOM after loading: every chart is an SVG element with its bars.
    for kind in ("timeline", "latency", "codes", "split"):
        assert f'data-chart="{kind}"' in dom
    assert dom.count('class="bar"') >= 9 + 3  # 3 results x p50/p90/p99, plus codes/timeline


def test_screenshot_shows_the_charts_drawn(tmp_path: Path) -> None:
    with_load = tmp_path / "load.html"
    with_load.write_text(render_html([load_journal(FIXTURES / "mesh-deviated-121.json")]))
    without = tmp_path / "plain.html"
    without.write_text(render_html([load_journal(FIXTURES / "plain-121.json")]))

    drawn = _screenshot(with_load, tmp_path)
    empty = _screenshot(without, tmp_path)
    p99 = _rgb(dict(PERCENTILES)["p99"])
    # Code -1 (socket error) is grey in the codes chart; no other part of the page uses it.
    code_error = _rgb("#7f7f7f")
    # Three p99 bars (9, 180 and 400 ms on a 500 ms axis) are hundreds of pixels of their colour;
    # a report with no load results has none, so the pixels come from the drawn charts.
    assert drawn.get(p99, 0) > 1500
    assert empty.get(p99, 0) == 0
    # (anti-aliased axis text yields a few grey pixels anywhere; the bar yields hundreds)
    assert drawn.get(code_error, 0) - empty.get(code_error, 0) > 150
    # The timeline is drawn in both: green bars for succeeded activities.
    assert empty.get(_rgb("#2ca02c"), 0) > 100


def test_screenshot_shows_retries_per_call_of_a_real_run(tmp_path: Path) -> None:
    """The abort-retries journal of a real run: the breaker chart draws the 3 retries a call
    that `retryOn: 5xx` causes (and none without it)."""
    page = tmp_path / "abort-retries.html"
    page.write_text(render_html([load_journal(FIXTURES / "real" / "abort-retries.json")]))
    drawn = _screenshot(page, tmp_path, height=4200)
    retries = _rgb(next(colour for key, _, colour in BREAKER_SERIES if key == "rq_retry"))
    # One bar of 3.0 on a 5-per-call axis: thousands of pixels of its colour, used nowhere else.
    assert drawn.get(retries, 0) > 1500
