"""The state directory's filesystem full (a real, small tmpfs filled to the last byte): writes
through the API are refused with 507 and a message saying what to do, nothing is half-written
(the object, the xDS files and what Envoy serves stay as they were), Envoy still comes back if
it dies meanwhile, and everything works again once there is space."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import actions
from chaosmesh_ext.kube.ledger import Ledger
from tests.support.full_disk import fill, small_filesystem

from .conftest import Mesh, request

pytestmark = pytest.mark.envoy

VS = "/apis/networking.istio.io/v1/namespaces/istio-test/virtualservices/canary"
FQDN = "canary.istio-test.svc.cluster.local"


def _weights(v1: int) -> bytes:
    route = [
        {"destination": {"host": FQDN, "subset": "v1"}, "weight": v1},
        {"destination": {"host": FQDN, "subset": "v2"}, "weight": 100 - v1},
    ]
    return json.dumps({"spec": {"http": [{"route": route}]}}).encode()


def _patch(mesh: Mesh, body: bytes) -> tuple[int, dict[str, Any]]:
    status, answer = mesh.api(
        "PATCH", VS, body, headers={"Content-Type": "application/merge-patch+json"}
    )
    return status, json.loads(answer)


def _xds(state_dir: Path) -> dict[str, bytes]:
    """Every file under xds/ (temp files included), by path."""
    root = state_dir / "xds"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _versions(mesh: Mesh) -> list[str]:
    return [request(mesh.gateway()["url"])[2].split()[0].decode() for _ in range(20)]


@pytest.fixture
def state_on_small_fs(tmp_path: Path) -> Iterator[Path]:
    """The mesh's state directory on its own 8 MiB filesystem (requested before mesh_up, so
    the mesh is down before it is unmounted)."""
    with small_filesystem(tmp_path / ".chaosmesh", "8m") as path:
        yield path


def test_a_full_state_directory_refuses_writes_with_507_and_changes_nothing(
    state_on_small_fs: Path, mesh_up
) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    assert _patch(mesh, _weights(100))[0] == 200
    status, before = mesh.api("GET", VS)
    assert status == 200
    xds_before = _xds(mesh.state_dir)
    filler = fill(state_on_small_fs)

    status, answer = _patch(mesh, _weights(0))
    assert status == 507
    assert answer["reason"] == "InsufficientStorage"
    assert "No space left on device" in answer["message"]
    assert f"state directory {mesh.state_dir}" in answer["message"]
    assert "Nothing was changed" in answer["message"]
    # Nothing half-written: the object, every xDS file (no temp file left), what Envoy serves.
    assert mesh.api("GET", VS) == (200, before)
    assert _xds(mesh.state_dir) == xds_before
    assert set(_versions(mesh)) == {"appv1"}

    # An action, through the official client, fails clearly and records that nothing changed.
    configuration = {"kubeconfig_path": mesh.state["kubeconfig"], "chaosmesh_run_id": "full"}
    with pytest.raises(ActivityFailed, match="507") as failure:
        actions.inject_abort("canary", percentage=50, ns="istio-test", configuration=configuration)
    assert "No space left on device" in str(failure.value)
    assert [e["state"] for e in Ledger("full").entries()] == ["not-applied"]
    assert mesh.api("GET", VS) == (200, before)

    # Envoy killed while the disk is full comes back with the files it has (the last good
    # configuration), which it cannot rewrite.
    envoy = mesh.status()["envoy"]
    os.kill(envoy["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        report = mesh.status()
        if report["envoy"]["restarts"] == 1 and report["envoy"]["running"]:
            break
        time.sleep(0.2)
    assert report["envoy"]["restarts"] == 1
    assert set(_versions(mesh)) == {"appv1"}
    assert _xds(mesh.state_dir) == xds_before

    # Space again: the same change goes through and is enforced.
    filler.unlink()
    status, answer = _patch(mesh, _weights(0))
    assert status == 200, answer
    assert set(_versions(mesh)) == {"appv2"}
    # mesh.json, which could not be rewritten when Envoy restarted, names the new Envoy now
    # (`mesh down` stops processes by the pids it records).
    new_pid = report["envoy"]["pid"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mesh.state = json.loads((mesh.state_dir / "mesh.json").read_text())
        if new_pid in [p["pid"] for p in mesh.state["pids"]]:
            break
        time.sleep(0.1)
    assert new_pid in [p["pid"] for p in mesh.state["pids"]]
