"""A fault that was not injected stops the run: real `chaos run` with the safety-net control
against the Kubernetes API emulator (tests/support/kapi.py) on the Kubernetes target.

Chaos Toolkit alone records the failed action and plays on to a "completed" run (exit 0),
so an unchanged steady state would read as "the mesh survived the fault".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import chaosmesh
from tests.support.kapi import RunningEmulator
from tests.support.kubefix import state

CHAOS = str(Path(sys.executable).with_name("chaos"))


def _step(name: str, func: str, kind: str = "action", **arguments: Any) -> dict[str, Any]:
    module = "chaosmesh_ext.actions" if kind == "action" else "chaosmesh_ext.probes"
    return {
        "type": kind,
        "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments},
    }


def _experiment(**configuration: Any) -> dict[str, Any]:
    return {
        "title": "abort on a misspelt VirtualService",
        "description": "the abort names 'canray', which does not exist",
        "configuration": {"mesh_target": "kubernetes", **configuration},
        "controls": [
            {
                "name": "chaosmesh-safety-net",
                "provider": {"type": "python", "module": "chaosmesh_ext.control"},
            }
        ],
        "method": [
            _step("delay-reviews", "inject_delay", virtual_service="reviews", delay="1s"),
            _step("abort-canary", "inject_abort", virtual_service="canray", percentage=50),
            _step("timeout-reviews", "set_timeout", virtual_service="reviews", timeout="2s"),
        ],
        "rollbacks": [_step("restore", "restore")],
    }


def _run(
    seeded: RunningEmulator, tmp_path: Path, experiment: dict[str, Any]
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    env = dict(
        os.environ,
        KUBECONFIG=str(seeded.kubeconfig),
        CHAOSMESH_LEDGER_DIR=str(tmp_path / "ledger"),
        HOME=str(tmp_path),
    )
    env.pop("MESH_TARGET", None)
    env.pop("CHAOSMESH_RUN_ID", None)
    journal = tmp_path / "journal.json"
    proc = subprocess.run(
        [CHAOS, "--no-log-file", "run", "--journal-path", str(journal), str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, json.loads(journal.read_text()), journal


@pytest.mark.slow
def test_a_failed_fault_action_stops_the_run_and_the_safety_net_restores(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    before = state(seeded, "virtualservices", "reviews")
    proc, journal, path = _run(seeded, tmp_path, _experiment())
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert journal["status"] == "interrupted"
    # The step after the failed fault never ran; the first fault was put back.
    assert [r["activity"]["name"] for r in journal["run"]] == ["delay-reviews", "abort-canary"]
    assert journal["run"][1]["status"] == "failed"
    assert state(seeded, "virtualservices", "reviews") == before
    assert "chaosmesh: stopping the run: fault not injected: abort-canary:" in output
    assert "canray" in output
    (section,) = [e for e in journal["experiment"]["extensions"] if e["name"] == "chaosmesh"]
    assert section["stopped"]["activity"] == "abort-canary"
    shown = chaosmesh("journal", "show", str(path)).stdout.splitlines()
    assert shown[1].split()[0] == "FAILED"
    assert shown[2].strip().startswith("fault not injected: abort-canary: VirtualService")


@pytest.mark.slow
def test_stop_on_failure_off_plays_on_but_the_run_is_still_reported_failed(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    before = state(seeded, "virtualservices", "reviews")
    experiment = _experiment(chaosmesh_stop_on_failure=False)
    proc, journal, path = _run(seeded, tmp_path, experiment)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # chaoslib's own verdict
    assert journal["status"] == "completed"
    assert [r["status"] for r in journal["run"]] == ["succeeded", "failed", "succeeded"]
    assert state(seeded, "virtualservices", "reviews") == before  # the rollback ran
    shown = chaosmesh("journal", "show", str(path)).stdout.splitlines()
    assert shown[1].split()[0] == "FAILED"
    assert shown[2].strip().startswith("fault not injected: abort-canary:")


@pytest.mark.slow
def test_another_extensions_failed_action_does_not_stop_the_run(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    experiment = _experiment()
    experiment["method"] = [
        # Another extension's failed action: recorded, reported, but not ours to stop.
        {
            "type": "action",
            "name": "foreign-step",
            "provider": {
                "type": "python",
                "module": "os",
                "func": "rmdir",
                "arguments": {"path": str(tmp_path / "absent")},
            },
        },
        _step("delay-reviews", "inject_delay", virtual_service="reviews", delay="1s"),
    ]
    before = state(seeded, "virtualservices", "reviews")
    proc, journal, _ = _run(seeded, tmp_path, experiment)
    assert journal["status"] == "completed", proc.stdout + proc.stderr
    assert [r["status"] for r in journal["run"]] == ["failed", "succeeded"]
    assert state(seeded, "virtualservices", "reviews") == before  # the rollback ran
