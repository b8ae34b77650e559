"""MeshClient: what the CLI and the experiments' target learn from bringing a mesh up and down,
as typed results, on a real daemon (real Envoy, real workloads)."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.client import (
    ManifestsRefused,
    MeshClient,
    MeshNotRunning,
    MeshStartFailed,
    UpResult,
)
from chaosmesh_ext.mesh.logs import LOG_CAP_ENV, LogCapError
from chaosmesh_ext.mesh.state import DaemonId
from tests.support.processes import pids_mentioning as _processes_mentioning

from .conftest import SEED, request
from .test_mesh_lifecycle import _command_deployment, _sleeper

pytestmark = pytest.mark.envoy


@pytest.fixture
def client(tmp_path: Path):
    """A client on its own state directory; whatever mesh runs there at the end is stopped."""
    mesh = MeshClient(tmp_path / ".chaosmesh")
    try:
        yield mesh
    finally:
        mesh.down()


def _recorded(client: MeshClient) -> list[DaemonId]:
    document = client.state.read() or {}
    return [DaemonId(p["pid"], p.get("started")) for p in document.get("pids") or []]


def test_up_says_who_started_the_daemon_and_down_stops_only_that_one(
    client: MeshClient, tmp_path: Path
) -> None:
    shutil.copytree(SEED / "canary", tmp_path / "canary")
    manifests = client.load([tmp_path / "canary"], namespace="istio-test")

    first = client.up(manifests)
    assert first.started and first.daemon.alive()
    assert first.daemon == client.current().daemon  # type: ignore[union-attr]
    assert first.kubeconfig.is_file() and first.kubeconfig.stat().st_mode & 0o077 == 0
    assert first.gateway_urls and request(first.gateway_urls[0])[0] == 200
    processes = _recorded(client)
    assert len(processes) > 2 and all(p.alive() for p in processes)

    # The same call on a running mesh hands the objects over: not ours to stop.
    again = client.up(manifests)
    assert not again.started and again.daemon == first.daemon
    assert again.objects == len(manifests.found) > 0

    # Same pid, other start time: a recycled pid is not our daemon.
    impostor = DaemonId(first.daemon.pid, "0")
    assert client.down(only=impostor).outcome == "another"
    assert first.daemon.alive()

    stopped = client.down(only=first.daemon)
    assert stopped.outcome == "stopped" and stopped.processes == len(processes)
    assert not stopped.daemon_survived
    assert not any(p.alive() for p in processes)
    assert client.current() is None and not client.state.mesh_json.exists()
    assert client.down().outcome == "nothing"


def test_a_daemon_killed_while_starting_leaves_nothing_behind(
    client: MeshClient, tmp_path: Path
) -> None:
    token = f"startdies{uuid.uuid4().hex[:8]}"
    (tmp_path / "slow.yaml").write_text(_command_deployment(token, _sleeper(token)))
    manifests = client.load([tmp_path / "slow.yaml"])
    outcome: list[UpResult | BaseException] = []

    def up() -> None:
        try:
            outcome.append(client.up(manifests, timeout=60))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=up)
    thread.start()
    try:
        # The daemon records the workload as soon as it starts it, before the mesh serves.
        deadline = time.monotonic() + 30
        workload: DaemonId | None = None
        while workload is None and time.monotonic() < deadline:
            document = client.state.read() or {}
            workload = next(
                (
                    DaemonId(p["pid"], p["started"])
                    for p in document.get("pids") or []
                    if p["role"].startswith("workload ")
                ),
                None,
            )
            time.sleep(0.05)
        assert workload is not None and workload.alive()
        os.kill(document["pid"], signal.SIGKILL)  # no chance to stop its workload itself
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert isinstance(outcome[0], MeshStartFailed), outcome
        assert "did not start (exit -9)" in str(outcome[0])
        assert not workload.alive()
        assert client.current() is None and not client.state.mesh_json.exists()
    finally:
        thread.join(timeout=60)
        for pid in _processes_mentioning(token):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _processes_mentioning(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_mentioning(token)


def test_bad_manifests_change_nothing_and_start_nothing(client: MeshClient, tmp_path: Path) -> None:
    (tmp_path / "entry.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\n"
    )
    with pytest.raises(ManifestsRefused, match=r"(?s)nothing changed:.*ServiceEntry"):
        client.load([tmp_path / "entry.yaml"])

    # Loads, but routes to a Service the mesh would not have (istioctl analyze's IST0101).
    (tmp_path / "vs.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n"
        "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n"
    )
    manifests = client.load([tmp_path / "vs.yaml"])
    with pytest.raises(ManifestsRefused, match=r"(?s)nothing started:.*matches no Service"):
        client.up(manifests)
    assert client.current() is None
    assert not client.state.daemon_log.exists()  # no daemon was ever started


def test_without_a_mesh_status_and_apply_say_how_to_start_one(client: MeshClient) -> None:
    with pytest.raises(MeshNotRunning, match=r"no mesh running in .*chaosmesh mesh up"):
        client.status()
    with pytest.raises(MeshNotRunning, match="no mesh running"):
        client.apply(client.load([]))
    assert client.running() is None


def test_a_bad_log_cap_in_the_environment_starts_nothing(
    client: MeshClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``CHAOSMESH_LOG_CAP`` counts for every new mesh the client starts (the experiments'
    target included), and a bad value is refused, naming it, before a daemon is started."""
    monkeypatch.setenv(LOG_CAP_ENV, "lots")
    with pytest.raises(LogCapError, match=f"{LOG_CAP_ENV}: expected a size"):
        client.up(client.load([]))
    assert client.current() is None
    assert not client.state.daemon_log.exists()
