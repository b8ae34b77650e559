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
def test_release_stops_only_the_daemon_this_run_started(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(mesh_target.KEEP_MESH_ENV, raising=False)
    config: dict[str, Any] = {"mesh_target": "embedded", "mesh_state_dir": str(state_dir)}
    ours = mesh_target.prepare(config)
    assert ours.started_mesh and ours.daemon == _daemon(state_dir)

    # Our mesh went away and another run started its own in the same directory.
    _mesh("down", state_dir=state_dir)
    _mesh("up", state_dir=state_dir)
    theirs = _daemon(state_dir)
    assert theirs is not None and theirs != ours.daemon

    # A run that found that mesh running did not start it either.
    joined = mesh_target.prepare(dict(config))
    assert not joined.started_mesh
    mesh_target.release(joined)
    mesh_target.release(ours)
    assert _daemon(state_dir) == theirs  # still serving the other run
    assert alive(*theirs)

    # The run that did start it stops it.
    mesh_target.release(
        mesh_target.PreparedTarget(
            target=mesh_target.EMBEDDED, state_dir=state_dir, started_mesh=True, daemon=theirs
        )
    )
    assert _daemon(state_dir) is None and not alive(*theirs)


def test_an_unusable_state_directory_is_a_target_error_not_a_crash(tmp_path: Path) -> None:
    # The control turns only TargetError into "no Kubernetes client for this run"; anything
    # else escaping prepare would leave the run free to use the current kubeconfig.
    not_a_directory = tmp_path / "state"
    not_a_directory.write_text("a file where the state directory should be")
    config: dict[str, Any] = {"mesh_target": "embedded", "mesh_state_dir": str(not_a_directory)}
    with pytest.raises(mesh_target.TargetError, match=str(not_a_directory)):
        mesh_target.prepare(config)
    assert "kubeconfig_path" not in config
