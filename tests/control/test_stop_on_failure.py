"""A fault that was not injected stops the run: real `chaos run` with the safety-net control
against the Kubernetes API emulator (tests/support/kapi.py) on the Kubernetes target.

Chaos Toolkit alone records the failed action and plays on to a "completed" run (exit 0),
so an unchanged steady state would read as "the mesh survived the fault".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.chaos_run import SAFETY_NET, ChaosRun, chaos_run
from tests.support.cli import chaosmesh
from tests.support.kapi import RunningEmulator
from tests.support.kubefix import state


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
        "controls": [SAFETY_NET],
        "method": [
            _step("delay-reviews", "inject_delay", virtual_service="reviews", delay="1s"),
            _step("abort-canary", "inject_abort", virtual_service="canray", percentage=50),
            _step("timeout-reviews", "set_timeout", virtual_service="reviews", timeout="2s"),
        ],
        "rollbacks": [_step("restore", "restore")],
    }


def _run(seeded: RunningEmulator, tmp_path: Path, experiment: dict[str, Any]) -> ChaosRun:
    return chaos_run(experiment, tmp_path, env={"KUBECONFIG": str(seeded.kubeconfig)})


def _verdict(run: ChaosRun) -> list[str]:
    """The outcome word and the reason line of `chaosmesh journal show`."""
    lines = chaosmesh("journal", "show", str(run.journal_path)).stdout.splitlines()
    return [lines[1].split()[0], lines[2].strip()]


@pytest.mark.slow
def test_a_failed_fault_action_stops_the_run_and_the_safety_net_restores(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    before = state(seeded, "virtualservices", "reviews")
    run = _run(seeded, tmp_path, _experiment())
    journal = run.journal
    assert run.proc.returncode == 1, run.output
    assert journal["status"] == "interrupted"
    # The step after the failed fault never ran; the first fault was put back.
    assert [r["activity"]["name"] for r in journal["run"]] == ["delay-reviews", "abort-canary"]
    assert journal["run"][1]["status"] == "failed"
    assert state(seeded, "virtualservices", "reviews") == before
    assert "chaosmesh: stopping the run: fault not injected: abort-canary:" in run.output
    assert "canray" in run.output
    (section,) = [e for e in journal["experiment"]["extensions"] if e["name"] == "chaosmesh"]
    assert section["stopped"]["activity"] == "abort-canary"
    word, reason = _verdict(run)
    assert word == "FAILED"
    assert reason.startswith("fault not injected: abort-canary: VirtualService")


@pytest.mark.slow
def test_stop_on_failure_off_plays_on_but_the_run_is_still_reported_failed(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    before = state(seeded, "virtualservices", "reviews")
    run = _run(seeded, tmp_path, _experiment(chaosmesh_stop_on_failure=False))
    assert run.proc.returncode == 0, run.output  # chaoslib's own verdict
    assert run.journal["status"] == "completed"
    assert [r["status"] for r in run.journal["run"]] == ["succeeded", "failed", "succeeded"]
    assert state(seeded, "virtualservices", "reviews") == before  # the rollback ran
    word, reason = _verdict(run)
    assert word == "FAILED" and reason.startswith("fault not injected: abort-canary:")


@pytest.mark.slow
def test_another_extensions_failed_action_does_not_stop_the_run(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    experiment = _experiment()
    foreign = {"type": "python", "module": "os", "func": "rmdir",
               "arguments": {"path": str(tmp_path / "absent")}}  # fmt: skip
    experiment["method"] = [
        # Another extension's failed action: recorded and reported, but not ours to stop.
        {"type": "action", "name": "foreign-step", "provider": foreign},
        _step("delay-reviews", "inject_delay", virtual_service="reviews", delay="1s"),
    ]
    before = state(seeded, "virtualservices", "reviews")
    run = _run(seeded, tmp_path, experiment)
    assert run.journal["status"] == "completed", run.output
    assert [r["status"] for r in run.journal["run"]] == ["failed", "succeeded"]
    assert state(seeded, "virtualservices", "reviews") == before  # the rollback ran
