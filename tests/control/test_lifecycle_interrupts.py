"""Interrupting a run on the embedded mesh at the moments that used to go wrong: never a wrong
answer (no other cluster reached, a lost mesh never a "deviation"), never a leftover process,
always a journal.

Each test starts a real ``chaos run``, waits for the log line that marks the moment, sends
the signal, and then checks the verdict, the objects and the process table (no process
whose command line names the test's state directory may survive).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from chaosmesh_ext.journal import load_journal
from tests.support.lifecycle import (
    Tripwire,
    count_pods,
    delay_tomcat,
    load_nginx,
    mesh_experiment,
    run_env,
    start_chaos_run,
)
from tests.support.processes import kill_all_mentioning, pids_mentioning, wait_until

pytestmark = pytest.mark.slow


def _ledger_entries(ledger: Path) -> list[dict[str, object]]:
    entries = []
    for path in ledger.glob("*.json"):
        entries += json.loads(path.read_text())["entries"]
    return entries


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_during_mesh_start_up_stops_the_mesh_and_reaches_no_other_cluster(
    tmp_path: Path, signum: int
) -> None:
    state_dir = tmp_path / "mesh"
    experiment = mesh_experiment(
        state_dir, method=[delay_tomcat(), count_pods("count-pods-in-the-method")]
    )
    with Tripwire(tmp_path / "cluster") as cluster:
        # KUBECONFIG names "another cluster" (the user's current context): never to be used.
        env = run_env(tmp_path, tmp_path / "ledger", KUBECONFIG=str(cluster.kubeconfig))
        run, journal_path = start_chaos_run(experiment, tmp_path / "work", env)
        try:
            run.wait_for(r"starting the embedded mesh")
            # The daemon is starting (it holds the state directory): now.
            wait_until(lambda: (state_dir / "mesh.pid").exists(), 60, "the daemon started")
            run.signal(signum)
            run.wait()
        finally:
            run.stop()
            leftover = kill_all_mentioning(state_dir)
        assert cluster.seen == [], run.output
    assert leftover == [], run.output
    journal = load_journal(journal_path)
    assert journal.status == "interrupted", run.output
    assert journal.verdict.word == "interrupted"
    assert "while the embedded mesh was being prepared" in journal.verdict.reason
    assert journal.method == []  # no activity ran: nothing was injected anywhere
    assert _ledger_entries(tmp_path / "ledger") == []
    assert not (state_dir / "mesh.json").exists()


def _requests_logged(state_dir: Path) -> int:
    """Requests Envoy has written to the mesh's access log so far (whole lines)."""
    try:
        text = (state_dir / "access.jsonl").read_text()
    except FileNotFoundError:
        return 0
    return text.count("\n")


def test_a_second_ctrl_c_during_clean_up_does_not_stop_the_clean_up(tmp_path: Path) -> None:
    state_dir = tmp_path / "mesh"
    experiment = mesh_experiment(
        state_dir, method=[delay_tomcat(), load_nginx("long-load-under-the-delay", t="60s")]
    )
    env = run_env(tmp_path, tmp_path / "ledger")
    run, journal_path = start_chaos_run(experiment, tmp_path / "work", env)
    try:
        run.wait_for(r"Probe: long-load-under-the-delay")
        # The first Ctrl-C lands during the load itself, once Envoy logs its requests (20 a
        # second): the line above is written before the probe starts its load.
        before = _requests_logged(state_dir)
        wait_until(lambda: _requests_logged(state_dir) >= before + 10, 30, "the load's requests")
        run.signal(signal.SIGINT)
        # The safety net has restored the fault; the mesh this run started is stopping.
        run.wait_for(r"chaosmesh: stopping the embedded mesh")
        run.signal(signal.SIGINT)
        run.wait()
    finally:
        run.stop()
        leftover = kill_all_mentioning(state_dir)
    assert leftover == [], run.output
    assert "signal received during the clean-up" in run.output
    journal = load_journal(journal_path)  # written
    assert journal.status == "interrupted", run.output
    assert [r.action for r in journal.restored] == ["restored"]
    assert {e["state"] for e in _ledger_entries(tmp_path / "ledger")} == {"restored"}
    assert not (state_dir / "mesh.json").exists()


def test_a_mesh_killed_during_a_load_probe_fails_the_run_and_is_never_a_deviation(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "mesh"
    experiment = mesh_experiment(
        state_dir,
        hypothesis=[load_nginx("nginx-answers", slo={"max_error_rate": 0})],
        method=[delay_tomcat(), load_nginx("load-while-the-mesh-dies", t="20s")],
    )
    env = run_env(tmp_path, tmp_path / "ledger")
    run, journal_path = start_chaos_run(experiment, tmp_path / "work", env)
    access = state_dir / "access.jsonl"
    try:
        run.wait_for(r"Probe: load-while-the-mesh-dies")
        # Its load is under way: requests of it show in the access log.
        at_start = access.stat().st_size
        wait_until(lambda: access.stat().st_size > at_start, 60, "the load under way")
        mesh = json.loads((state_dir / "mesh.json").read_text())
        os.kill(mesh["pid"], signal.SIGKILL)
        code = run.wait()
    finally:
        run.stop()
        kill_all_mentioning(state_dir)
    assert code != 0
    journal = load_journal(journal_path)
    assert not journal.deviated, run.output
    assert journal.verdict.word == "failed", journal.verdict
    assert "the embedded mesh died" in journal.verdict.reason
    assert "load-while-the-mesh-dies" in journal.verdict.reason
    # Its Envoy and workloads died with the daemon; the safety net found nothing to restore
    # (the mesh's objects died with it) and said so instead of timing out.
    assert pids_mentioning(state_dir) == []
    assert [r.action for r in journal.restored] == ["moot"], run.output
    assert {e["state"] for e in _ledger_entries(tmp_path / "ledger")} == {"moot"}
    assert "no answer within" not in run.output
