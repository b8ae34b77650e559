"""``chaosmesh restore`` for changes whose embedded mesh no longer runs: moot, cleared, said so —
never "no answer within 10 s" or a request for a kubeconfig of a server that is gone. A
connection refused elsewhere is reported as refused, not as a timeout."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chaosmesh_ext import actions
from chaosmesh_ext.cli import main
from chaosmesh_ext.mesh import target as mesh_target
from chaosmesh_ext.mesh.client import MeshClient
from tests.support.lifecycle import MANIFESTS
from tests.support.processes import kill_all_mentioning


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "ledger"
    monkeypatch.setenv("CHAOSMESH_LEDGER_DIR", str(directory))
    monkeypatch.setenv("CHAOSMESH_RUN_ID", "run-on-a-mesh")
    for name in ("KUBECONFIG", "MESH_TARGET", "CHAOSMESH_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    return directory


def _states(ledger: Path) -> list[str]:
    return [e["state"] for e in json.loads((ledger / "run-on-a-mesh.json").read_text())["entries"]]


def _mesh_with_a_fault(state_dir: Path) -> dict[str, Any]:
    client = MeshClient(state_dir)
    client.up(client.load([MANIFESTS / "nginx-tomcat.yaml"]))
    configuration = {
        "mesh_target": "embedded",
        "mesh_state_dir": str(state_dir),
        "kubeconfig_path": str(state_dir / "kubeconfig"),
    }
    actions.inject_delay("tomcat-vs", "1s", configuration=configuration)
    return configuration


@pytest.mark.slow
@pytest.mark.parametrize("then", ["stopped", "restarted"])
def test_changes_on_an_embedded_mesh_that_no_longer_runs_are_moot_and_cleared(
    tmp_path: Path, ledger: Path, then: str
) -> None:
    state_dir = tmp_path / "mesh"
    try:
        _mesh_with_a_fault(state_dir)
        assert _states(ledger) == ["applied"]
        MeshClient(state_dir).down()
        if then == "restarted":  # a newer mesh in the same directory is not the one changed
            client = MeshClient(state_dir)
            client.up(client.load([MANIFESTS / "nginx-tomcat.yaml"]))
        listed = CliRunner().invoke(main, ["restore", "--list"])
        assert "moot: its embedded mesh has stopped" in listed.output
        result = CliRunner().invoke(main, ["restore"])
        assert result.exit_code == 0, result.output
        assert "run-on-a-mesh  VirtualService default/tomcat-vs: moot" in result.output
        assert "no answer within" not in result.output
        assert _states(ledger) == ["moot"]
        again = CliRunner().invoke(main, ["restore", "--list"])
        assert "nothing outstanding" in again.output
    finally:
        MeshClient(state_dir).down()
        kill_all_mentioning(state_dir)


def test_a_refused_connection_is_reported_as_refused_not_as_a_timeout(
    tmp_path: Path, ledger: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    kubeconfig = tmp_path / "gone" / "config"
    kubeconfig.parent.mkdir()
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "c", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "c"}}],
                "current-context": "c",
            }
        )
    )
    entry = {
        "id": "run-on-a-mesh#1",
        "run_id": "run-on-a-mesh",
        "kind": "VirtualService",
        "namespace": "default",
        "name": "tomcat-vs",
        "api_version": "networking.istio.io/v1",
        "action": "inject_delay",
        "time": "2026-12-02T00:00:00.000000Z",
        "state": "applied",
        "absent_before": False,
        "before": {"spec": {"hosts": ["tomcat-svc"]}},
        "after": {"spec": {"hosts": ["tomcat-svc"]}, "resourceVersion": "2"},
        "api": {"host": f"http://127.0.0.1:{port}", "kubeconfig": str(kubeconfig)},
    }
    ledger.mkdir()
    (ledger / "run-on-a-mesh.json").write_text(
        json.dumps({"run_id": "run-on-a-mesh", "entries": [entry]})
    )
    assert mesh_target.mesh_gone(kubeconfig, None) is None  # not a mesh's: really restored
    result = CliRunner().invoke(main, ["restore"])
    assert result.exit_code == 1
    assert "refused the connection" in result.output
    assert "no answer within" not in result.output
    assert _states(ledger) == ["applied"]  # still outstanding: the server may come back
