"""`chaosmesh journal show/report` on journals of this project's own experiments.

The files in ``fixtures/real/`` are unedited journals written by ``chaosmesh run
experiments/*.json`` on the embedded mesh (chaostoolkit 1.21), plus the journal of a
``chaosmesh gameday run`` stopped with SIGTERM during the timeout experiment's method and
the ``summary.json`` that ``chaosmesh run`` writes beside its journals. What a person needs
from them: load numbers rather than fortio's raw result, how breaker counters moved per
call, where a rollout stopped, and declared against observed traffic.
"""

from __future__ import annotations

import re
from pathlib import Path

from chaosmesh_ext.journal import load_journal
from chaosmesh_ext.journal.report import render_html
from tests.journal.journals import FIXTURES
from tests.support.cli import chaosmesh

REAL = FIXTURES / "real"
ABORT_RETRIES = REAL / "abort-retries.json"
CANARY = REAL / "canary-shift.json"
ROLLOUT = REAL / "progressive-canary.json"
INTERRUPTED = REAL / "timeout-gameday-sigterm.json"


def _show(path: Path) -> str:
    done = chaosmesh("journal", "show", str(path))
    # The exit status is the run's verdict: only the interrupted game day did not pass.
    assert done.returncode == (1 if path == INTERRUPTED else 0), done.stderr
    return done.stdout


def _line(out: str, needle: str) -> str:
    return next(line for line in out.splitlines() if needle in line)


def test_show_gives_load_numbers_not_the_raw_fortio_result() -> None:
    out = _show(ABORT_RETRIES)
    assert "AbortOn" not in out and "{" not in out.split("Method")[0]
    before = out.split("before: met", 1)[1].split("after:", 1)[0]
    # Calls, p99, error rate and codes, against the tolerance that checked them.
    assert re.search(
        r"✓ nginx-answers-fast\s+20 calls · p99 4\.7 ms · errors 0\.0% · 200:20 checked by "
        r"slo\(max_p99_ms=1000, expect_codes=\[200, 503\]\)",
        before,
    )
    # The tolerance's own "value" argument (chaoslib copies the probe's output there) is left out.
    assert "value=" not in out


def test_show_makes_the_retry_counters_evident() -> None:
    out = _show(ABORT_RETRIES)
    # Without retryOn the 503s are not retried: rq_retry does not move over 20 calls...
    default = _line(out, "nginx-svc: rq_retry 0 (+0")
    assert "0.0 per call" in default and "20 calls since the last reading" in default
    # ...with retryOn 5xx every call is tried 4 times: 3 retries a call.
    retried = _line(out, "nginx-svc: rq_retry 60 (+60")
    assert "3.0 per call" in retried and "rq_total 120 (+80)" in retried
    table = out.split("Circuit-breaker counters", 1)[1].splitlines()
    assert "retries/call" in table[1]
    assert table[3].split()[-1] == "0.0" and table[4].split()[-1] == "3.0"


def test_show_says_what_the_rollback_restored() -> None:
    rollbacks = _show(ABORT_RETRIES).split("Rollbacks", 1)[1].split("Safety net", 1)[0]
    assert "→ restored VirtualService default/nginx-vs: spec, labels and annotations" in rollbacks
    assert "→ restored VirtualService default/tomcat-vs" in rollbacks


def test_show_renders_a_progressive_rollout_in_two_lines() -> None:
    out = _show(ROLLOUT)
    assert (
        "→ halted at 10% (error rate 0.120 > 0.01), all traffic back to v1 · "
        "max canary weight 10%" in out
    )
    assert re.search(r"→ ✗\s+10% canary\s+errors 12\.0%\s+p99 5\.0 ms\s+200:88 503:12", out)
    assert "steps=" in out  # the arguments are still there, the raw result is not
    assert '"promoted"' not in out


def test_show_compares_declared_and_observed_split() -> None:
    out = _show(CANARY)
    before = out.split("before: met", 1)[1].split("after:", 1)[0]
    assert (
        "max_deviation 0.007 vs range [0, 0.06] (declared v1 90.0% v2 10.0% · "
        "observed v1 89.3% v2 10.7% · 1000 calls)" in before
    )
    split = out.split("Traffic split", 1)[1]
    assert re.search(
        r"after\s+split-follows-declared-weights\s+declared v1 0\.0% v2 100\.0%", split
    )
    # Every name column is as wide as the longest name: values line up.
    starts = {
        line.index("declared")
        for line in split.splitlines()
        if "split-follows-declared-weights " in line
    }
    assert len(starts) == 1


def test_show_interrupted_game_day_journal_names_the_cause_once() -> None:
    out = _show(INTERRUPTED)
    error = _line(out, "error:")
    # chaoslib wrapped the provider's ActivityFailed in another: one prefix, no class names.
    assert "chaoslib.exceptions" not in error
    assert "InterruptExecution: SIGTERM signal received" in error


def test_report_charts_breaker_counters_per_call_and_the_rollout(tmp_path: Path) -> None:
    page = render_html([load_journal(ABORT_RETRIES), load_journal(ROLLOUT), load_journal(CANARY)])
    breaker = re.search(r'<svg class="chart" data-chart="breaker".*?</svg>', page, re.S)
    assert breaker
    bars = dict(re.findall(r"<title>during · ([\w-]+) retries per call: ([\d.]+) ", breaker[0]))
    assert bars == {
        "nginx-upstream-counters-default-retryOn": "0.00",
        "nginx-upstream-counters-retryOn-5xx": "3.00",
    }
    assert '<td class="num">60 (+60)</td>' in page
    assert "Progressive rollout: progressive-rollout-of-v2" in page
    assert re.search(r"<td class=\"num\">10%</td>.*?12\.0%.*?200:88 503:12.*?failed", page, re.S)
    # The split chart puts what the VirtualService declared beside what was measured.
    split = re.findall(r'data-chart="split".*?</svg>', page, re.S)[-1]
    rows = re.findall(r'text-anchor="end"[^>]*>([^<]+)</text>', split)
    # Whole labels: the margin grows with the longest one.
    assert rows[:2] == [
        "before declared · split-follows-declared-weights",
        "before observed · split-follows-declared-weights",
    ]
    assert "v1: 0.9 (90.0%)" in split and "v1: 0.893 (89.3%)" in split
    assert "AbortOn" not in page


def test_report_of_a_run_directory_glob_uses_its_summary(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    # `chaosmesh run` writes summary.json beside the journals: `dir/*.json` picks it up.
    done = chaosmesh(
        "journal", "report", str(ABORT_RETRIES), str(REAL / "summary.json"), "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "summary.json: a run summary, not a journal" in done.stderr
    page = out.read_text()
    assert page.count('<section class="journal"') == 1
    outcomes = re.search(r'<table class="outcomes">.*?</table>', page, re.S)
    assert outcomes and outcomes[0].count("<tr>") == 1 + 6
    assert "progressive-canary.json" in outcomes[0]


def test_a_summary_alone_is_not_a_report(tmp_path: Path) -> None:
    done = chaosmesh("journal", "report", str(REAL / "summary.json"), "-o", str(tmp_path / "r"))
    assert done.returncode != 0 and "no journal among" in done.stderr
    assert not (tmp_path / "r").exists()


def test_show_reads_the_knee_steps_and_the_advised_breaker() -> None:
    out = _show(REAL / "breaker-sizing.json")
    method = out.split("Method")[1].split("Rollbacks")[0]
    assert '{"advice"' not in method and "knee_search" not in method
    knee = _line(method, "→ knee ")
    assert "knee 120 qps · p99 172 ms · 14.61 in flight · then 140 qps: served 120" in knee
    steps = [line for line in method.splitlines() if " qps  served " in line]
    assert [line.split("→ ")[1][0] for line in steps] == ["✓", "✓", "✓", "✗"]
    assert "breaker: maxConnections 62 · http2MaxRequests 28 · http1MaxPendingRequests 28" in (
        _line(method, "breaker: ")
    )
    assert "DestinationRule default/checkout changed" in method
