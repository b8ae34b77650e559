"""Journals printed as log lines (a game day's pod log) and read back by ``chaosmesh journal``:
the p99 trend across nights comes from logs as it does from files."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from chaosmesh_ext.journal import JournalError
from chaosmesh_ext.journal.lines import journal_line, journals_in_log
from tests.journal.journals import FIXTURES
from tests.support.cli import chaosmesh

REAL = FIXTURES / "real" / "canary-shift.json"


def night(raw: dict, day: int, scale: float) -> dict:
    """The same run on another night, its latencies scaled."""
    copy = json.loads(json.dumps(raw))
    copy["start"] = re.sub(r"^\d{4}-\d\d-\d\d", f"2026-11-{day:02d}", copy["start"])
    text = json.dumps(copy)
    text = re.sub(
        r'("p99_ms": )([0-9.]+)', lambda m: f"{m.group(1)}{float(m.group(2)) * scale}", text
    )
    return json.loads(text)


def pod_log(tmp_path: Path, name: str, journals: list[dict]) -> Path:
    """What `kubectl logs --timestamps` shows: progress lines and one line per journal."""
    lines = ["2026-11-26T02:30:00.1Z starting game day seed-nightly"]
    for index, journal in enumerate(journals, start=1):
        lines.append(f"2026-11-26T02:30:0{index}.0Z [{index}/{len(journals)}] x: completed")
        lines.append(
            "2026-11-26T02:30:09.0Z "
            + journal_line("seed-nightly", "20261126T023000Z", f"{index:02d}-x.json", journal)
        )
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_log_gives_back_each_journal_it_printed(tmp_path: Path) -> None:
    raw = json.loads(REAL.read_text())
    line = journal_line("seed-nightly", "20261126T023000Z", "02-canary-shift.json", raw)
    assert "\n" not in line
    log = pod_log(tmp_path, "night.log", [raw, night(raw, 27, 2.0)])
    journals = journals_in_log(log)
    assert journals is not None and len(journals) == 2
    assert journals[0].title == journals[1].title == raw["experiment"]["title"]
    assert journals_in_log(REAL) is None  # a journal file holds no journal lines
    (tmp_path / "empty.log").write_text("no journals here\n")
    assert journals_in_log(tmp_path / "empty.log") is None


def test_a_line_cut_short_is_named(tmp_path: Path) -> None:
    line = journal_line("g", "r", "01-x.json", json.loads(REAL.read_text()))
    log = tmp_path / "cut.log"
    log.write_text("starting\n" + line[: len(line) // 2] + "\n")
    with pytest.raises(JournalError, match=r"cut\.log:2: a journal line that is not complete"):
        journals_in_log(log)


def test_report_over_nights_of_pod_logs_shows_the_p99_trend(tmp_path: Path) -> None:
    raw = json.loads(REAL.read_text())
    first = pod_log(tmp_path, "night-1.log", [night(raw, 24, 1.0)])
    second = pod_log(tmp_path, "night-2.log", [night(raw, 25, 3.0)])
    done = chaosmesh("journal", "report", str(first), str(second), "-o", "trend.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 journal(s)" in done.stdout
    page = (tmp_path / "trend.html").read_text()
    assert f"Trend: {html.escape(raw['experiment']['title'])}" in page
    # Three times the latency the night before: the verdict says so.
    assert re.search(
        r"p99 under the fault, latest run: <b>[0-9.]+ ms</b>; previous: [0-9.]+ ms "
        r"\(\+200%, regressed\)",
        page,
    ), page[page.find("trend-verdict") - 50 :][:400]
    shown = chaosmesh("journal", "show", str(first), cwd=tmp_path)
    assert shown.returncode == 0 and raw["experiment"]["title"] in shown.stdout
