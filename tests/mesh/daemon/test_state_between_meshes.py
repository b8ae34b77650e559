"""Nothing in a state directory outlives the mesh that wrote it in a way that changes the next
mesh: the second ``mesh up`` (or ``chaos run``) in one directory serves like the first.

The sidecars' outbound table (``outbound.json``) was the culprit: it survived ``mesh down``
with the old mesh's listener ports, a new workload read it before the new mesh rewrote it
(the file wins over the workload's environment) and kept calling a port nobody listened on
(502 "Connection refused" through the nginx -> tomcat proxy).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from chaosmesh_ext._sidecar import Sidecar, format_outbound
from chaosmesh_ext.mesh.apply import Applier
from chaosmesh_ext.mesh.envoy import EnvoyProcess
from chaosmesh_ext.mesh.paths import StatePaths
from tests.support.chaos_run import CHAOS, CHAOS_TIMEOUT
from tests.support.processes import kill_all_mentioning, pids_mentioning

from .conftest import chaosmesh, request

REPO = Path(__file__).resolve().parents[3]
EXPERIMENTS = REPO / "experiments"

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "backend", "namespace": "default"},
    "spec": {"selector": {"app": "backend"}, "ports": [{"port": 9090}]},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "backend", "namespace": "default"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "backend"}},
        "template": {
            "metadata": {"labels": {"app": "backend"}},
            "spec": {"containers": [{"name": "backend", "image": "example/backend:1"}]},
        },
    },
}


def test_workloads_never_see_the_previous_meshs_outbound_table(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "state")
    paths.root.mkdir()
    stale = {"9090": "127.0.0.1:1"}  # what a previous mesh left: a port nobody serves
    paths.outbound_file.write_text(json.dumps(stale))
    applier = Applier(paths, "default", EnvoyProcess(paths.root), cancel=threading.Event())
    try:
        applier.apply([SERVICE], [DEPLOYMENT])  # replicas started, Envoy not yet
        # By the time any workload of this mesh runs, the file is this mesh's.
        assert json.loads(paths.outbound_file.read_text()) == format_outbound(applier.outbound())
        sidecar = Sidecar(outbound=applier.outbound(), outbound_file=str(paths.outbound_file))
        assert sidecar.connect_address("backend", 9090) == applier.outbound()[9090]
    finally:
        applier.stop()
    assert not paths.outbound_file.exists()  # the mesh's ports went with it


def test_a_rewritten_table_is_seen_even_with_the_same_mtime(tmp_path: Path) -> None:
    # Coarse file-system clocks can give two writes the same mtime: the rename's new inode
    # (and size) still tells the sidecar that the file changed.
    path = tmp_path / "outbound.json"
    path.write_text(json.dumps({"9090": "127.0.0.1:1111"}))
    sidecar = Sidecar(outbound_file=str(path))
    assert sidecar.connect_address("backend", 9090) == ("127.0.0.1", 1111)
    before = os.stat(path)
    fresh = tmp_path / "outbound.tmp"
    fresh.write_text(json.dumps({"9090": "127.0.0.1:22222"}))
    os.utime(fresh, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(fresh, path)
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert sidecar.connect_address("backend", 9090) == ("127.0.0.1", 22222)


NGINX = "nginx-svc.default.svc.cluster.local"


def _through_nginx(cwd: Path) -> int:
    url = chaosmesh("mesh", "url", "nginx-svc", "--plain", cwd=cwd).stdout.strip()
    status, _, body = request(url, "/", host=NGINX)
    assert b"tomcat-0" in body or status != 200, body  # nginx answered via tomcat
    return status


@pytest.mark.slow
def test_mesh_up_down_up_in_one_directory_serves_both_times(tmp_path: Path) -> None:
    manifest = shutil.copy(EXPERIMENTS / "manifests" / "nginx-tomcat.yaml", tmp_path)
    state_dir = tmp_path / ".chaosmesh"
    try:
        for _ in range(2):
            chaosmesh("mesh", "up", "-f", str(manifest), cwd=tmp_path)
            assert _through_nginx(tmp_path) == 200
            chaosmesh("mesh", "down", cwd=tmp_path)
            assert pids_mentioning(state_dir) == []
    finally:
        chaosmesh("mesh", "down", cwd=tmp_path, check=False)
        kill_all_mentioning(state_dir)


@pytest.mark.slow
def test_the_same_experiment_twice_with_chaos_run_completes_both_times(tmp_path: Path) -> None:
    import subprocess

    work = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS, work, ignore=shutil.ignore_patterns(".chaosmesh", "journals"))
    env = {**os.environ, "HOME": str(tmp_path), "CHAOSMESH_LEDGER_DIR": str(tmp_path / "ledger")}
    for key in ("MESH_TARGET", "CHAOSMESH_RUN_ID", "CHAOSMESH_STATE_DIR", "KUBECONFIG"):
        env.pop(key, None)
    try:
        for attempt in (1, 2):
            journal = tmp_path / f"journal-{attempt}.json"
            proc = subprocess.run(
                [CHAOS, "--no-log-file", "run", "--journal-path", str(journal), "timeout.json"],
                cwd=work, env=env, capture_output=True, text=True, timeout=CHAOS_TIMEOUT,
            )  # fmt: skip
            output = proc.stdout + proc.stderr
            assert proc.returncode == 0, output
            data = json.loads(journal.read_text())
            assert data["status"] == "completed" and not data["deviated"], output
            # A 502 status anywhere in the run's log, not the digits inside a number
            # (a measured duration such as 1.48705140502 once matched a bare substring).
            assert re.search(r"(?<![\d.])502(?![\d.])", output) is None, output
            assert pids_mentioning(work / ".chaosmesh") == [], output
    finally:
        kill_all_mentioning(work / ".chaosmesh")
