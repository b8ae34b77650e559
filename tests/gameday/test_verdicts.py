"""A run that tested nothing is never a pass: `chaosmesh gameday run` and `chaosmesh run`.

Chaos Toolkit ends both of these runs ``completed``, not deviated, and exits 0:

- the steady state is not met *before* the method (no method runs: nothing was tested);
- the fault action fails (chaoslib records it and plays on).

Both commands must call them failed, say why, and exit non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import chaosmesh
from tests.support.gameday_plans import healthy, run_dirs, uninjected, untested, write_plan

NOT_TESTED = "steady state not met before the fault: nothing was tested"
NOT_INJECTED = "fault not injected: inject-fault:"


def _plan(base: Path) -> Path:
    work = base / "work"
    work.mkdir()
    return write_plan(
        base,
        {
            "a-untested": untested(work),
            "b-uninjected": uninjected(work),
            "c-ok": healthy(work, "c"),
        },
        on_deviation="continue",
    )


def test_gameday_run_reports_untested_and_uninjected_runs_as_failed(tmp_path: Path) -> None:
    done = chaosmesh("gameday", "run", str(_plan(tmp_path)), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    (run,) = run_dirs(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    outcomes = {Path(o["experiment"]).stem: o for o in summary["outcomes"]}
    # What chaoslib wrote: completed, not deviated, for both.
    for name in ("a-untested", "b-uninjected"):
        journal = json.loads(Path(outcomes[name]["journal"]).read_text())
        assert (journal["status"], journal["deviated"]) == ("completed", False)
    assert outcomes["a-untested"]["status"] == "failed"
    assert outcomes["a-untested"]["reason"].startswith(NOT_TESTED + ": ready-file-exists")
    assert outcomes["b-uninjected"]["status"] == "failed"
    assert outcomes["b-uninjected"]["reason"].startswith(NOT_INJECTED)
    assert "no-such-dir" in outcomes["b-uninjected"]["reason"]
    assert outcomes["c-ok"]["status"] == "completed"
    assert summary["ok"] is False
    assert [Path(p).stem for p in summary["failed"]] == ["a-untested", "b-uninjected"]
    assert "game day demo: NOT OK" in done.stdout
    assert f"failed      a-untested.json — {NOT_TESTED}" in done.stdout
    page = (run / "report.html").read_text()
    assert NOT_TESTED in page and NOT_INJECTED in page


def test_chaosmesh_run_reports_untested_and_uninjected_runs_as_failed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    files = []
    for name, experiment in (("untested", untested(work)), ("uninjected", uninjected(work))):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(experiment))
        files.append(str(path))
    journals = tmp_path / "journals"
    done = chaosmesh(
        "run", "--target", "kubernetes", "--journals", str(journals), *files, cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in done.stdout.splitlines()[2:4]}
    assert rows == {"untested": ["failed", "no"], "uninjected": ["failed", "no"]}
    assert f"  untested: {NOT_TESTED}" in done.stdout
    assert f"  uninjected: {NOT_INJECTED}" in done.stdout
    # The hint names a journal it wrote: the first that did not pass.
    assert f"(next: chaosmesh journal show {journals / 'untested.json'})" in done.stdout
    # `journal show` on that journal says the same first.
    shown = chaosmesh("journal", "show", str(journals / "untested.json")).stdout.splitlines()
    assert shown[1].split()[0] == "FAILED" and shown[2].strip().startswith(NOT_TESTED)


def test_chaosmesh_run_gives_no_journal_hint_when_it_wrote_no_journal(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"title": "no method, no hypothesis"')  # not JSON: chaos run refuses it
    done = chaosmesh(
        "run", "--target", "kubernetes", "--journals", str(tmp_path / "j"), str(broken)
    )
    assert done.returncode == 1
    assert "journal show" not in done.stdout


def test_worst_errors_counts_every_load_a_rollout_guard_made_too(tmp_path: Path) -> None:
    """A rollout that halted at 10 % saw 12 % errors in its guard load: the summary says so."""
    rollout = {
        "promoted": False,
        "halted_at": 10,
        "max_canary_weight": 10,
        "rolled_back_to": "v1",
        "steps": [
            {"canary_weight": 10, "error_rate": 0.12, "p99_ms": 45.0,
             "codes": {"200": 88, "503": 12}, "passed": False,
             "failures": ["error rate 0.120 > 0.01"]},
        ],
    }  # fmt: skip
    helper = {"type": "python", "module": "ctk_helpers"}
    experiment = {
        "title": "a canary that fails its guard",
        "description": "the rollout's own loads are the only ones with errors",
        "steady-state-hypothesis": {
            "title": "calm",
            "probes": [
                {"type": "probe", "name": "calm-load", "tolerance": {"type": "range",
                 "range": [0, 0.01], "target": "error_rate"},
                 "provider": {**helper, "func": "load_result", "arguments": {"p99": 8.0}}},
            ],
        },
        "method": [
            {"type": "action", "name": "rollout",
             "provider": {**helper, "func": "returns", "arguments": {"value": rollout}}},
        ],
    }  # fmt: skip
    path = tmp_path / "canary.json"
    path.write_text(json.dumps(experiment))
    support = Path(__file__).resolve().parents[1] / "support"
    done = chaosmesh(
        "run", "--target", "kubernetes", "--journals", str(tmp_path / "j"), str(path),
        cwd=tmp_path, env={"PYTHONPATH": str(support)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    row = done.stdout.splitlines()[2].split()
    assert row[0] == "canary" and row[1] == "completed"
    assert row[5:] == ["45.0", "ms", "12.0%", "-"]  # worst p99, worst errors, split
