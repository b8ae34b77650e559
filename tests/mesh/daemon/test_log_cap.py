"""The log cap as users set it (``mesh up --log-cap``, an experiment's ``mesh_log_cap``): the
logs of a mesh under load stay within it, rotated, and the Istio metrics still count every
request exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.load.engine import run as run_load
from chaosmesh_ext.load.options import LoadOptions
from chaosmesh_ext.mesh import target as mesh_target
from tests.support.metrics_helpers import scrape, total, wait_for

from .conftest import Mesh, chaosmesh

pytestmark = pytest.mark.envoy

CAP = 1024**2
REQUESTS = 4000


def _source_total(url: str) -> float:
    return total(scrape(url), reporter="source")


def test_logs_under_load_stay_within_the_cap_and_metrics_count_every_request_once(
    mesh_up,
) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test", "--log-cap", "1MiB")
    assert mesh.state["log_cap"] == CAP
    # ~3 MB of access logs in each format: the cap is passed several times over. At a fixed
    # rate (~5 s) the keeper's checks (twice a second) see the files grow step by step, as in
    # a long run, instead of a burst done before its first round.
    result = run_load(
        LoadOptions(url=mesh.gateway()["url"], qps=800, connections=4, exactly=REQUESTS)
    )
    assert result["RetCodes"] == {"200": REQUESTS}
    metrics = mesh.state["metrics_url"]
    wait_for(lambda: _source_total(metrics) >= REQUESTS, 30, "every request counted")
    logs = mesh.status()["logs"]
    assert logs["rotations"] >= 4
    # Once the keeper has had its round after the load (it checks twice a second).
    wait_for(lambda: mesh.status()["logs"]["used_bytes"] <= CAP, 10, "the logs within the cap")
    assert _source_total(metrics) == REQUESTS  # nothing lost or counted twice across rotations
    text = chaosmesh("mesh", "status", cwd=mesh.workdir).stdout
    assert "of 1.0 MiB (--log-cap)" in text


def test_a_bad_log_cap_starts_nothing(tmp_path: Path) -> None:
    proc = chaosmesh("mesh", "up", "--log-cap", "huge", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "--log-cap: expected a size such as 64MB" in proc.stderr
    assert not (tmp_path / ".chaosmesh" / "mesh.json").exists()


def test_an_experiment_sets_the_cap_of_the_mesh_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(mesh_target.KEEP_MESH_ENV, raising=False)
    state_dir = tmp_path / "state"
    config: dict[str, Any] = {
        "mesh_target": "embedded",
        "mesh_state_dir": str(state_dir),
        "mesh_log_cap": "lots",
    }
    with pytest.raises(mesh_target.TargetError, match="configuration mesh_log_cap"):
        mesh_target.prepare(dict(config))
    assert not (state_dir / "mesh.json").exists()
    prepared = mesh_target.prepare({**config, "mesh_log_cap": "2MiB"})
    try:
        assert json.loads((state_dir / "mesh.json").read_text())["log_cap"] == 2 * CAP
    finally:
        mesh_target.release(prepared)
    assert not (state_dir / "mesh.json").exists()
