"""`chaosmesh journal show/report` on real journals written by chaostoolkit 1.19 and 1.21."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chaosmesh_ext.journal import load_journal
from chaosmesh_ext.journal.report import render_html
from chaosmesh_ext.journal.summary import render
from tests.journal.journals import FIXTURES, JOURNALS
from tests.support.cli import chaosmesh

ANSI = re.compile(r"\x1b\[[0-9;]*m")
VERSIONS = ("119", "121")


def test_fixtures_cover_both_chaostoolkit_versions() -> None:
    versions = {load_journal(p).chaoslib_version for p in JOURNALS}
    assert {"1.44.0", "1.45.1"} <= versions


@pytest.mark.parametrize("path", JOURNALS, ids=lambda p: p.stem)
def test_show_summarises_every_journal(path: Path) -> None:
    raw = json.loads(path.read_text())
    done = chaosmesh("journal", "show", str(path))
    out = done.stdout
    assert raw["experiment"]["title"] in out
    # The verdict, not chaoslib's status: a failed fault action is no pass, and chaoslib
    # 1.44 records a SIGTERM as a failed activity of a "completed" run.
    verdicts = {
        "failed-method": "FAILED",
        "failed-probe": "FAILED",
        "not-tested": "FAILED",
        "interrupted": "INTERRUPTED",
        "mesh-deviated": "DEVIATED",
    }
    outcome = verdicts.get(path.stem.rsplit("-", 1)[0], "COMPLETED")
    assert out.splitlines()[1].split()[0] == outcome
    # Like `chaosmesh run`, the exit status says whether the run passed (a CI gate).
    if outcome == "COMPLETED":
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 1
        assert "1 of 1 journal(s) did not pass" in done.stderr
    for record in raw["run"]:
        assert record["activity"]["name"] in out


@pytest.mark.parametrize("version", VERSIONS)
def test_show_deviated_run_names_the_probe_value_and_tolerance(version: str) -> None:
    out = chaosmesh("journal", "show", str(FIXTURES / f"mesh-deviated-{version}.json")).stdout
    after = out.split("after: not met", 1)[1]
    assert re.search(r"✗ reviews-load\s+p99_ms 400 vs range \[0, 50\]", after)
    # The load table: phase, requests, rate, percentiles, error rate and codes per result.
    row = next(ln for ln in out.splitlines() if ln.strip().startswith("during"))
    assert row.split()[2:] == [
        "200",
        "100.0",
        "30.0",
        "120",
        "180",
        "10.0%",
        "-1:5",
        "200:180",
        "503:15",
    ]
    # What the safety net put back, and what it refused to clobber.
    assert re.search(r"restored\s+VirtualService default/reviews\s+spec, labels and annot", out)
    assert re.search(r"refused\s+DestinationRule default/reviews\s+changed by someone", out)
    assert "v1 91.0% v2 9.0%" in out


def test_show_interrupted_activity_without_status() -> None:
    raw = json.loads((FIXTURES / "interrupted-121.json").read_text())
    assert "status" not in raw["run"][-1]  # what chaoslib writes for a signalled activity
    out = chaosmesh("journal", "show", str(FIXTURES / "interrupted-121.json")).stdout
    assert "interrupted: received SIGTERM" in out
    assert re.search(r"! action hold-fault\s+interrupted", out)
    assert "after: not checked" in out


@pytest.mark.parametrize("version", VERSIONS)
def test_show_failed_probe_gives_the_error_not_a_traceback(version: str) -> None:
    out = chaosmesh("journal", "show", str(FIXTURES / f"failed-probe-{version}.json")).stdout
    assert "error: ConnectionError: connection refused by reviews:9080" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("version", VERSIONS)
def test_show_run_without_method_and_foreign_experiment(version: str) -> None:
    out = chaosmesh("journal", "show", str(FIXTURES / f"no-method-{version}.json")).stdout
    assert "(no method: only the hypothesis was checked)" in out
    plain = chaosmesh("journal", "show", str(FIXTURES / f"plain-{version}.json")).stdout
    assert "process sleep(arguments=0.05)" in plain
    # What a process provider returned, read as a person would: exit code and its output.
    assert "→ exit 0\n" in plain and "→ exit 0 · stdout: /tmp\n" in plain
    assert "Load" not in plain and "Safety net" not in plain


def test_colour_only_when_asked_or_on_a_terminal() -> None:
    path = str(FIXTURES / "mesh-deviated-121.json")
    piped = chaosmesh("journal", "show", path)
    assert not ANSI.search(piped.stdout)  # not a terminal -> plain text
    forced = chaosmesh("journal", "show", "--color", path)
    assert ANSI.search(forced.stdout)
    assert ANSI.sub("", forced.stdout) == piped.stdout


def test_no_color_and_dumb_terminals_win_over_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    from chaosmesh_ext.commands.journal import use_colour

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert use_colour(None, Tty()) is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_colour(None, Tty()) is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert use_colour(None, Tty()) is False
    assert use_colour(True, Tty()) is True  # --color forces it


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json", "not JSON (line 1, column 1"),
        ("", "not JSON"),
        ('{"title": "an experiment, not a journal"}', "not a Chaos Toolkit journal"),
        ("[1, 2]", "expected a JSON object, got list"),
    ],
)
def test_bad_journal_is_named_and_fails(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text(content)
    out = tmp_path / "report.html"
    for args in (
        ("show", str(bad)),
        ("report", str(FIXTURES / "mesh-ok-121.json"), str(bad), "-o", str(out)),
    ):
        done = chaosmesh("journal", *args)
        assert done.returncode != 0
        assert f"journal {bad}" in done.stderr and message in done.stderr
        assert "Traceback" not in done.stderr
    assert not out.exists()  # nothing written when one input is bad


def test_missing_journal_is_named(tmp_path: Path) -> None:
    done = chaosmesh("journal", "show", str(tmp_path / "nope.json"))
    assert done.returncode != 0 and "nope.json: no such file" in done.stderr


def test_report_for_every_journal_is_one_self_contained_page(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = chaosmesh("journal", "report", *map(str, JOURNALS), "-o", str(out))
    # Written whole, and the exit status says that some of those runs did not pass.
    assert done.returncode == 1 and "journal(s) did not pass" in done.stderr, done.stderr
    page = out.read_text()
    assert page.count('<section class="journal"') == len(JOURNALS)
    # Self-contained: nothing to fetch (no scripts, stylesheets or images by URL).
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page and "<script src" not in page
    for kind in ("timeline", "latency", "codes", "split", "trend"):
        assert f'data-chart="{kind}"' in page


def test_report_charts_load_before_during_after(tmp_path: Path) -> None:
    journal = load_journal(FIXTURES / "mesh-deviated-121.json")
    page = render_html([journal])
    latency = re.search(r'<svg class="chart" data-chart="latency".*?</svg>', page, re.S)
    assert latency
    bars = re.findall(r"<title>(\w+) · ([\w-]+) (p\d\d): ([\d.]+) ms</title>", latency.group(0))
    values = {(phase, pct): float(v) for phase, _, pct, v in bars}
    assert values[("before", "p99")] == 9.0
    assert values[("during", "p99")] == 180.0
    assert values[("after", "p99")] == 400.0
    codes = re.search(r'data-chart="codes".*?</svg>', page, re.S)
    assert codes and "503: 15 (7.5%)" in codes.group(0)
    assert 'data-chart="split"' in page and "v1: 0.91 (91.0%)" in page
    # One journal: no trend to draw.
    assert 'data-chart="trend"' not in page


def _with_p99_under_fault(raw: dict, p99: float, start: str) -> dict:
    copy = json.loads(json.dumps(raw))
    copy["start"] = start
    copy["run"][1]["output"]["p99_ms"] = p99
    return copy


def test_report_trend_across_runs_flags_a_regression(tmp_path: Path) -> None:
    raw = json.loads((FIXTURES / "mesh-ok-121.json").read_text())
    paths = []
    # Given out of order: the trend sorts runs by their start.
    for i, (p99, day) in enumerate(
        [(300.0, "2026-11-19"), (120.0, "2026-11-05"), (125.0, "2026-11-12")]
    ):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(_with_p99_under_fault(raw, p99, f"{day}T03:00:00+00:00")))
        paths.append(str(path))
    out = tmp_path / "trend.html"
    assert chaosmesh("journal", "report", *paths, "-o", str(out)).returncode == 0
    page = out.read_text()
    trend = re.search(r'data-chart="trend".*?</svg>', page, re.S)
    assert trend
    points = re.findall(r"<title>p99 under the fault: ([\d.]+) ms</title>", trend.group(0))
    assert points == ["120.00", "125.00", "300.00"]
    assert "latest run: <b>300 ms</b>; previous: 125 ms (+140%, regressed)" in page


def test_safety_net_shapes_flat_list_and_errors() -> None:
    from chaosmesh_ext.journal import parse_journal

    raw = json.loads((FIXTURES / "plain-121.json").read_text())
    raw["experiment"]["extensions"] = [
        {"name": "other", "restored": ["not ours"]},
        {
            "name": "chaosmesh",
            "restored": [
                {"kind": "VirtualService", "namespace": "shop", "name": "cart", "action": "deleted"}
            ],
            "safety_net": [{"when": "cleanup", "error": "API server unreachable"}],
        },
    ]
    journal = parse_journal(raw)
    assert [(r.label, r.action, r.detail) for r in journal.restored] == [
        ("VirtualService shop/cart", "deleted", ""),
        ("safety net", "failed", "API server unreachable"),
    ]
    # The control ran but had nothing to restore: say so rather than nothing at all.
    raw["experiment"]["extensions"] = [{"name": "chaosmesh", "run_id": "r1"}]
    assert "Safety net\n  nothing left to restore" in render(parse_journal(raw))


def test_continuous_hypothesis_with_hundreds_of_checks_stays_readable() -> None:
    from chaosmesh_ext.journal import parse_journal

    raw = json.loads((FIXTURES / "mesh-ok-121.json").read_text())
    probe = raw["run"][1]
    raw["steady_states"]["during"] = [
        {
            "steady_state_met": True,
            "probes": [{**probe, "output": {**probe["output"], "p99_ms": i}}],
        }
        for i in range(200)
    ]
    page = render_html([parse_journal(raw)])
    latency = re.search(r'data-chart="latency".*?</svg>', page, re.S)
    assert latency and "<polyline" in latency.group(0)  # lines, not 200 groups of bars
    assert "hypothesis during · 200 checks" in page
    codes = re.search(r'data-chart="codes".*?</svg>', page, re.S)
    assert codes and "during · all results" in codes.group(0)
    # Codes summed over the 200 checks plus the method's own probe (180 x 200, 15 x 503 each).
    assert "200: 36180 (" in codes.group(0) and "503: 3015 (" in codes.group(0)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("not-tested", "steady state not met before the fault: nothing was tested: reviews-load"),
        ("failed-method", "fault not injected: inject-delay: ConnectionError: VirtualService"),
    ],
)
def test_a_run_that_tested_nothing_is_shown_and_reported_as_failed(
    version: str, fixture: str, reason: str, tmp_path: Path
) -> None:
    path = FIXTURES / f"{fixture}-{version}.json"
    raw = json.loads(path.read_text())
    assert (raw["status"], raw["deviated"]) == ("completed", False)  # what chaoslib says
    shown = chaosmesh("journal", "show", str(path))
    assert shown.returncode == 1  # chaoslib said completed; the review says no pass
    lines = shown.stdout.splitlines()
    assert lines[1].split()[0] == "FAILED"
    assert lines[2].strip().startswith(reason)
    page = tmp_path / "report.html"
    done = chaosmesh("journal", "report", str(path), "-o", str(page))
    assert done.returncode == 1 and page.exists(), done.stderr
    html = page.read_text()
    assert '<span class="badge bad">failed</span>' in html and reason in html
