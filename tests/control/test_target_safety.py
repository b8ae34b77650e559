"""The embedded target never lets a run fall through to the user's cluster, and the safety net
stops exactly the mesh daemon it started: never another run's, never leaving its own behind.

Real `chaos run` and real `chaosmesh mesh up` processes; the Kubernetes API emulator of
tests/kube stands for the user's current kubeconfig context ("maybe production").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.mesh import target as mesh_target
from chaosmesh_ext.mesh.client import MeshClient
from chaosmesh_ext.mesh.state import DaemonId, alive
from tests.support.kapi import RunningEmulator
from tests.support.kubefix import canonical

BIN = Path(sys.executable).parent
CHAOS = str(BIN / "chaos")
CLI = [sys.executable, "-m", "chaosmesh_ext.cli"]


def _mesh(*args: str, state_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*CLI, "mesh", *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"mesh {' '.join(args)}: {proc.stderr}{proc.stdout}")
    return proc


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A mesh state directory; whatever mesh runs there at the end is stopped."""
    path = tmp_path / "mesh"
    try:
        yield path
    finally:
        _mesh("down", state_dir=path, check=False)


def _daemon(state_dir: Path) -> DaemonId | None:
    current = MeshClient(state_dir).current()
    return current.daemon if current else None


def _pids_mentioning(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if token.encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_failed_embedded_setup_never_touches_the_current_kubeconfig(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    assert seeded.api is not None
    before = canonical(seeded.api.get_object("virtualservices", "default", "reviews"))
    experiment: dict[str, Any] = {
        "title": "runs on the embedded mesh only",
        "description": "its manifest is missing, so the mesh cannot be prepared",
        "configuration": {
            "mesh_target": "embedded",
            "mesh_manifests": ["missing-bookinfo.yaml"],
            "mesh_state_dir": str(tmp_path / "mesh"),
        },
        "controls": [
            {
                "name": "chaosmesh-safety-net",
                "provider": {"type": "python", "module": "chaosmesh_ext.control"},
            }
        ],
        "steady-state-hypothesis": {"title": "nothing", "probes": []},
        "method": [
            {
                "type": "action",
                "name": "delay-reviews",
                "provider": {
                    "type": "python",
                    "module": "chaosmesh_ext.actions",
                    "func": "inject_delay",
                    "arguments": {"virtual_service": "reviews", "delay": "3s"},
                },
            }
        ],
    }
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    env = dict(
        os.environ,
        KUBECONFIG=str(seeded.kubeconfig),  # the user's current context
        CHAOSMESH_LEDGER_DIR=str(tmp_path / "ledger"),
        CHAOSMESH_RUN_ID="target-safety",
        HOME=str(tmp_path),
    )
    env.pop("MESH_TARGET", None)
    journal = tmp_path / "journal.json"
    proc = subprocess.run(
        [CHAOS, "--no-log-file", "run", "--journal-path", str(journal), str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    # Not even a write that the safety net later undid: the object was never touched.
    assert canonical(seeded.api.get_object("virtualservices", "default", "reviews")) == before, (
        output
    )
    ledger = tmp_path / "ledger" / "target-safety.json"
    assert not ledger.exists() or json.loads(ledger.read_text())["entries"] == [], output
    assert "missing-bookinfo.yaml" in output  # the user is told why
    if journal.exists():
        assert json.loads(journal.read_text())["status"] != "completed"
        assert json.loads(journal.read_text())["run"] == []


@pytest.mark.slow
def test_a_mesh_that_never_serves_is_stopped_not_orphaned(state_dir: Path, tmp_path: Path) -> None:
    token = f"never-serves-{os.getpid()}-{tmp_path.name}"
    manifest = tmp_path / "sleeper.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: sleeper}\nspec:\n"
        "  selector: {app: sleeper}\n  ports: [{port: 7071}]\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: sleeper}\nspec:\n"
        "  replicas: 1\n  template:\n    metadata:\n      labels: {app: sleeper}\n"
        "      annotations:\n        chaosmesh.io/workload: command\n"
        f"        chaosmesh.io/command: \"python3 -c 'import time; time.sleep(600)' {token}\"\n"
        "    spec:\n      containers: [{name: app, image: example/sleeper:1}]\n"
    )
    try:
        # Our bound (20 s) is shorter than the workload wait (30 s): `mesh up` must give up
        # first and stop its daemon itself.
        with pytest.raises(mesh_target.TargetError):
            mesh_target.mesh_up(state_dir, [manifest], None, timeout=20)
        pid_file = state_dir / "mesh.pid"
        daemon_pid = int(pid_file.read_text()) if pid_file.exists() else None
        assert daemon_pid is None or not alive(daemon_pid)
        assert MeshClient(state_dir).current() is None
        assert _pids_mentioning(token) == []
    finally:
        for pid in _pids_mentioning(token):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_release_stops_only_a_run_started_daemon_and_only_when_the_last_run_leaves(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(mesh_target.KEEP_MESH_ENV, raising=False)
    config: dict[str, Any] = {"mesh_target": "embedded", "mesh_state_dir": str(state_dir)}
    ours = mesh_target.prepare(dict(config), run_id="run-a")
    assert ours.started_mesh and ours.daemon == _daemon(state_dir)

    # Our mesh went away and the user started one with `mesh up` in the same directory.
    _mesh("down", state_dir=state_dir)
    _mesh("up", state_dir=state_dir)
    theirs = _daemon(state_dir)
    assert theirs is not None and theirs != ours.daemon

    # A run that found that mesh running did not start it: it leaves it running, and so does
    # the run whose own mesh is gone.
    said: list[str] = []
    joined = mesh_target.prepare(dict(config), run_id="run-b", notify=said.append)
    assert not joined.started_mesh
    assert any("reusing the embedded mesh" in line for line in said), said
    mesh_target.release(joined, notify=said.append)
    assert any("leaving the embedded mesh" in line and "outside" in line for line in said)
    mesh_target.release(ours)
    assert _daemon(state_dir) == theirs  # still serving the user
    assert alive(*theirs)
    _mesh("down", state_dir=state_dir)

    # A mesh a run started is stopped by the last of the runs using it, not the first.
    first = mesh_target.prepare(dict(config), run_id="run-c")
    second = mesh_target.prepare(dict(config), run_id="run-d")
    assert first.started_mesh and not second.started_mesh
    assert first.daemon == second.daemon
    assert mesh_target.release(first) is False
    assert _daemon(state_dir) == first.daemon
    assert mesh_target.release(second) is True
    assert first.daemon is not None
    assert _daemon(state_dir) is None and not alive(*first.daemon)


def test_an_unusable_state_directory_is_a_target_error_not_a_crash(tmp_path: Path) -> None:
    # The control turns only TargetError into "no Kubernetes client for this run"; anything
    # else escaping prepare would leave the run free to use the current kubeconfig.
    not_a_directory = tmp_path / "state"
    not_a_directory.write_text("a file where the state directory should be")
    config: dict[str, Any] = {"mesh_target": "embedded", "mesh_state_dir": str(not_a_directory)}
    with pytest.raises(mesh_target.TargetError, match=str(not_a_directory)):
        mesh_target.prepare(config)
    assert "kubeconfig_path" not in config


@pytest.mark.slow
def test_activities_of_an_embedded_experiment_reach_its_mesh_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaoslib.exceptions import ActivityFailed

    from chaosmesh_ext import actions, probes
    from tests.support.lifecycle import MANIFESTS, Tripwire

    state_dir = tmp_path / "mesh"
    monkeypatch.setenv("CHAOSMESH_LEDGER_DIR", str(tmp_path / "ledger"))
    monkeypatch.delenv("MESH_TARGET", raising=False)
    with Tripwire(tmp_path / "cluster") as cluster:
        monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))  # the user's cluster
        config: dict[str, Any] = {"mesh_target": "embedded", "mesh_state_dir": str(state_dir)}
        # No mesh was prepared for the run (no safety-net control): no fallback.
        with pytest.raises(ActivityFailed, match="none was prepared"):
            actions.inject_delay("tomcat-vs", "1s", configuration=dict(config))
        with pytest.raises(ActivityFailed, match="none was prepared"):
            probes.fortio_load("http://127.0.0.1:1/", n=1, via="local", configuration=config)
        client = MeshClient(state_dir)
        client.up(client.load([MANIFESTS / "nginx-tomcat.yaml"]))
        try:
            # Another kubeconfig than the mesh's, even a copy of it.
            for other in (cluster.kubeconfig, tmp_path / "copy"):
                if other != cluster.kubeconfig:
                    other.write_bytes((state_dir / "kubeconfig").read_bytes())
                wrong = {**config, "kubeconfig_path": str(other)}
                with pytest.raises(ActivityFailed, match="not the embedded mesh's kubeconfig"):
                    actions.inject_delay("tomcat-vs", "1s", configuration=wrong)
            # The mesh's own path, but the file now names another server: the client does
            # not reach the mesh's URL with the mesh's certificate.
            right = {**config, "kubeconfig_path": str(state_dir / "kubeconfig")}
            mine = (state_dir / "kubeconfig").read_bytes()
            (state_dir / "kubeconfig").write_bytes(cluster.kubeconfig.read_bytes())
            with pytest.raises(ActivityFailed, match="does not reach the embedded mesh"):
                actions.inject_delay("tomcat-vs", "1s", configuration=right)
            (state_dir / "kubeconfig").write_bytes(mine)
            assert actions.inject_delay("tomcat-vs", "1s", configuration=right)["changed"]
        finally:
            client.down()
        # The mesh is gone: refused, not sent elsewhere.
        with pytest.raises(ActivityFailed, match="is not running"):
            actions.inject_delay("tomcat-vs", "1s", configuration=right)
        assert cluster.seen == []
