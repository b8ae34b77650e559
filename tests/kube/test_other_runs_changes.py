"""A run never changes an object another run changed and has not put back: while that run
runs (each would restore it to a different state, and one run's verdict would be computed
on the other's fault), nor after it was killed (its change must be restored first)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import actions
from chaosmesh_ext.kube.client import api_client
from chaosmesh_ext.kube.ledger import Ledger
from chaosmesh_ext.kube.restore import objects_for, restore_ledger
from tests.support.kapi import RunningEmulator
from tests.support.kubefix import state

VS = "virtualservices"


def _as_run(monkeypatch: pytest.MonkeyPatch, run_id: str) -> None:
    monkeypatch.setenv("CHAOSMESH_RUN_ID", run_id)


def _entries(tmp_path: Path, run_id: str) -> list[dict[str, object]]:
    path = tmp_path / "ledger" / f"{run_id}.json"
    return json.loads(path.read_text())["entries"] if path.exists() else []


def test_another_runs_unrestored_change_is_left_alone_naming_that_run(
    seeded: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _as_run(monkeypatch, "run-a")
    actions.inject_delay("reviews", "1s")
    faulted = state(seeded, VS, "reviews")

    _as_run(monkeypatch, "run-b")
    with pytest.raises(ActivityFailed, match=r"changed by run run-a .*still running"):
        actions.inject_abort("reviews", 503)
    assert state(seeded, VS, "reviews") == faulted
    assert _entries(tmp_path, "run-b") == []  # nothing recorded, nothing to restore

    # run-a was killed (its process is gone): still not touched, and the user is told how.
    ledger_path = tmp_path / "ledger" / "run-a.json"
    data = json.loads(ledger_path.read_text())
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    data["process"]["pid"] = int(gone.stdout)
    ledger_path.write_text(json.dumps(data))
    with pytest.raises(ActivityFailed, match=r"no longer running.*chaosmesh restore --run run-a"):
        actions.inject_abort("reviews", 503)
    assert state(seeded, VS, "reviews") == faulted

    # Once run-a's change is put back, run-b may change the object.
    client = api_client()
    try:
        restore_ledger(Ledger("run-a"), objects_for(client, 10))
    finally:
        client.close()
    actions.inject_abort("reviews", 503)
    assert [e["state"] for e in _entries(tmp_path, "run-b")] == ["applied"]
