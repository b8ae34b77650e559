"""The HTML report as a reader meets it: the window's width, whole labels, the description's
Markdown, CJK text, the values the run used and the control's own time on the timeline —
from a real ``chaos run`` with the safety-net control, through ``chaosmesh journal report``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosmesh_ext.journal import svg
from tests.support.chaos_run import SAFETY_NET, chaos_run, running_target
from tests.support.cli import chaosmesh
from tests.support.load_target import Target

LONG = "productpage-keeps-answering-while-ratings-is-slow"  # was cut at 36 characters


@pytest.fixture
def target() -> Iterator[Target]:
    with running_target() as started:
        yield started


def test_report_page_of_a_real_run(target: Target, tmp_path: Path) -> None:
    experiment = {
        "title": "金丝雀发布：90/10 分流",  # the runbook's language
        "description": "Checks **productpage** with `fortio`.\n\n- one\n- two <b>not html</b>",
        "configuration": {"mesh_target": "kubernetes", "base": target.url, "ns": "istio-test"},
        "controls": [SAFETY_NET],
        "method": [
            {
                "type": "probe",
                "name": LONG,
                "provider": {
                    "type": "python",
                    "module": "chaosmesh_ext.probes",
                    "func": "fortio_load",
                    "arguments": {"url": "${base}/", "n": 3, "via": "local", "ns": "${ns}"},
                },
            }
        ],
    }
    journal = chaos_run(experiment, tmp_path).journal_path
    page_path = tmp_path / "report.html"
    done = chaosmesh("journal", "report", str(journal), "-o", str(page_path))
    assert done.returncode == 0, done.stderr
    page = page_path.read_text(encoding="utf-8")
    # The window's width, and a font stack with CJK faces (page and charts).
    body_css = re.search(r"body\{[^}]*\}", page)
    assert body_css and "max-width" not in body_css[0] and "Noto Sans CJK SC" in body_css[0]
    assert "金丝雀发布：90/10 分流" in page
    # Markdown rendered, HTML in it escaped.
    assert "<p>Checks <b>productpage</b> with <code>fortio</code>.</p>" in page
    assert "<li>two &lt;b&gt;not html&lt;/b&gt;</li>" in page
    # The values the run used, not ${ns}.
    assert "ns=istio-test" in page and "${ns}" not in page
    # The timeline: whole step names, and the control's own time (the safety net).
    timeline = re.search(r'data-chart="timeline".*?</svg>', page, re.S)
    assert timeline
    labels = re.findall(r'text-anchor="end"[^>]*>([^<]+)</text>', timeline[0])
    assert f"method · {LONG}" in labels
    assert "control · safety net" in labels


def test_label_room_fits_wide_cjk_labels() -> None:
    latin = svg.label_room(["a" * 20])
    cjk = svg.label_room(["金" * 20])
    assert cjk > latin > 80
    row = svg.timeline("t", "t", [("金" * 20, 0.0, 1.0, "#000", "tip")], 1.0)
    width = int(re.search(r'width="(\d+)"', row)[1])  # type: ignore[index]
    assert width - cjk >= 860 - svg.LABEL_ROOM  # the plot keeps its width
