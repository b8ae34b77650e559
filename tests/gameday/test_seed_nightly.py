"""``gamedays/seed-nightly.yaml``: every experiment of the repository as a nightly game day, green
on the embedded mesh — one mesh, in the state directory ``make run`` uses (``./.chaosmesh``
where the game day starts), never a second one beside the experiments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaosmesh_ext.gameday.plan import load_plan
from chaosmesh_ext.mesh.client import MeshClient
from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "gamedays" / "seed-nightly.yaml"

pytestmark = [pytest.mark.envoy, pytest.mark.slow]


def test_plan_runs_every_experiment_of_the_repository() -> None:
    plan = load_plan(PLAN)
    assert [p.name for p in plan.experiments] == sorted(
        p.name for p in (ROOT / "experiments").glob("*.json")
    )
    assert plan.schedule is not None and plan.timezone == "UTC"
    assert plan.target is None  # each experiment's own here; the CronJob sets kubernetes


def test_gameday_run_is_green_on_one_embedded_mesh_in_the_usual_state_dir(tmp_path: Path) -> None:
    require_tool("prometheus")  # the timeout experiment reads Istio's metrics from it
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MESH_", "KUBE", "PROMETHEUS_URL")) and k != "CHAOSMESH_STATE_DIR"
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "chaosmesh_ext.cli", "gameday", "run", str(PLAN)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert done.stdout.count("starting the embedded mesh in") == 1
        assert f"starting the embedded mesh in {tmp_path / '.chaosmesh'} with Prometheus" in (
            done.stdout
        )
        (run,) = [p for p in (tmp_path / "journals" / "seed-nightly").iterdir() if p.is_dir()]
        summary = json.loads((run / "summary.json").read_text())
        assert summary["ok"] is True
        experiments = load_plan(PLAN).experiments
        assert [o["status"] for o in summary["outcomes"]] == ["completed"] * len(experiments)
        # Every experiment's control used that mesh (not one in experiments/.chaosmesh).
        kubeconfig = tmp_path / ".chaosmesh" / "kubeconfig"
        for log in sorted(run.glob("*.log")):
            assert f"embedded mesh ready ({kubeconfig})" in log.read_text(), log.name
        # The game day stopped the mesh it started.
        assert MeshClient(tmp_path / ".chaosmesh").current() is None
    finally:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "chaosmesh_ext.cli",
                "mesh",
                "down",
                "--state-dir",
                str(tmp_path / ".chaosmesh"),
            ],
            env=env,
            capture_output=True,
            timeout=60,
        )
