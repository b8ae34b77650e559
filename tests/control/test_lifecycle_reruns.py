"""Running again after a run was killed: the new run finds the mesh the killed one left
running and the fault it left in place. It says so, puts the fault back first (in its
journal), measures its steady state on the mesh as declared, and stops the mesh at the end
— it was a run's mesh, and no run uses it any more."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from chaosmesh_ext.journal import load_journal
from tests.support.lifecycle import (
    delay_tomcat,
    load_nginx,
    mesh_experiment,
    remove_delay,
    run_env,
    start_chaos_run,
)
from tests.support.processes import kill_all_mentioning, pids_mentioning, wait_until

pytestmark = pytest.mark.slow


def _entries(ledger: Path, run_id: str) -> list[dict[str, object]]:
    path = ledger / f"{run_id}.json"
    entries: list[dict[str, object]] = json.loads(path.read_text())["entries"]
    return entries


def test_a_rerun_after_kill_9_mid_method_restores_the_leftover_fault_first(tmp_path: Path) -> None:
    state_dir = tmp_path / "mesh"
    ledger = tmp_path / "ledger"
    # nginx calls tomcat: under the 200 ms delay the killed run leaves, p99 is far over 100 ms.
    steady = [load_nginx("nginx-fast", slo={"max_p99_ms": 100, "max_error_rate": 0})]
    killed = mesh_experiment(
        state_dir, hypothesis=steady, method=[delay_tomcat(), load_nginx("hold", t="120s")]
    )
    first, _ = start_chaos_run(
        killed, tmp_path / "a", run_env(tmp_path, ledger, CHAOSMESH_RUN_ID="run-a"), "a"
    )
    try:
        first.wait_for(r"Probe: hold")
        assert [e["state"] for e in _entries(ledger, "run-a")] == ["applied"]
        first.signal(signal.SIGKILL)  # nothing of it runs any more: no safety net
        first.wait()
        mesh = json.loads((state_dir / "mesh.json").read_text())

        rerun = mesh_experiment(
            state_dir,
            hypothesis=steady,
            method=[
                delay_tomcat(),
                load_nginx("slow-under-the-delay", expect={"min_p99_ms": 150}),
                remove_delay(),
            ],
        )
        second, journal_path = start_chaos_run(
            rerun, tmp_path / "b", run_env(tmp_path, ledger, CHAOSMESH_RUN_ID="run-b"), "b"
        )
        code = second.wait()
    finally:
        first.stop()
        leftover = kill_all_mentioning(state_dir)
    output = second.output
    assert code == 0, output
    assert f"reusing the embedded mesh running in {state_dir} (pid {mesh['pid']})" in output
    assert "run run-a" in output and "no longer running" in output
    assert "run run-a is no longer running and left 1 change(s)" in output
    journal = load_journal(journal_path)
    assert journal.verdict.word == "completed", (journal.verdict, output)
    # The leftover was restored before the run, and the journal says so.
    assert [r.action for r in journal.restored] == ["restored"]
    assert [r.label for r in journal.restored] == ["VirtualService default/tomcat-vs"]
    assert [e["state"] for e in _entries(ledger, "run-a")] == ["restored"]
    assert {e["state"] for e in _entries(ledger, "run-b")} == {"restored"}
    # The killed run's mesh was stopped by the last run that used it: nothing is left.
    assert "chaosmesh: stopping the embedded mesh" in output
    wait_until(lambda: not pids_mentioning(state_dir), 30, "the mesh stopped")
    assert leftover == []
