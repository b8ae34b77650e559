"""Fixtures: ``chaosmesh mesh up`` as a user runs it (a real subprocess, real Envoy), always
followed by ``mesh down`` and a check that no process the mesh started survives."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from chaosmesh_ext.mesh import kubeconfig
from chaosmesh_ext.mesh.api import tls
from chaosmesh_ext.mesh.state import alive
from tests.support.tools import require_tool

SEED = Path(__file__).parent / "seed"
CLI = [sys.executable, "-m", "chaosmesh_ext.cli"]
T = 30  # per command / request


def chaosmesh(
    *args: str, cwd: Path, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    # Each test's mesh lives in its own directory (the session sets CHAOSMESH_STATE_DIR).
    env = {**os.environ, "CHAOSMESH_STATE_DIR": str(cwd / ".chaosmesh")}
    proc = subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"chaosmesh {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}"
        )
    return proc


@dataclass
class Mesh:
    workdir: Path
    state: dict[str, Any]

    @property
    def state_dir(self) -> Path:
        return self.workdir / ".chaosmesh"

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        binary = require_tool("kubectl")
        proc = subprocess.run(
            [binary, "--kubeconfig", self.state["kubeconfig"], *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=T,
            check=False,
            env={"HOME": str(self.workdir), "PATH": os.environ.get("PATH", "/usr/bin")},
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr}")
        return proc

    def api(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: bool = True,
        timeout: float = T,
    ) -> tuple[int, bytes]:
        """One request to the mesh's API as its kubeconfig allows (its CA; its token unless
        ``token=False``)."""
        secret, ca_pem = kubeconfig.credentials(Path(self.state["kubeconfig"]))
        assert secret and ca_pem, "the mesh's kubeconfig holds no token or certificate"
        split = urlsplit(self.state["api_url"])
        conn = http.client.HTTPSConnection(
            split.hostname or "127.0.0.1",
            split.port,
            timeout=timeout,
            context=tls.client_context(ca_pem),
        )
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {secret}"
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def status(self) -> dict[str, Any]:
        """``mesh status --json``."""
        report: dict[str, Any] = json.loads(
            chaosmesh("mesh", "status", "--json", cwd=self.workdir).stdout
        )
        return report

    def service(self, name: str) -> dict[str, Any]:
        return next(s for s in self.state["services"] if s["name"] == name)

    def gateway(self) -> dict[str, Any]:
        gateway: dict[str, Any] = self.state["gateways"][0]
        return gateway

    def access_log(self) -> list[dict[str, Any]]:
        path = self.state_dir / "access.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def request(
    url: str, path: str = "/", host: str | None = None, method: str = "GET", timeout: float = T
) -> tuple[int, dict[str, str], bytes]:
    split = urlsplit(url)
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Host": host} if host else {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def envoy_listener_port(mesh: Mesh, name: str) -> int:
    """The local port of Envoy's listener ``name`` (``gateway_443``...) as its admin reports
    it: a Gateway applied with kubectl after ``mesh up`` included."""
    url = f"{mesh.state['admin_url']}/listeners?format=json"
    with urllib.request.urlopen(url, timeout=T) as answer:
        listeners = json.load(answer)["listener_statuses"]
    for listener in listeners:
        if listener["name"] == name:
            return int(listener["local_address"]["socket_address"]["port_value"])
    raise AssertionError(f"Envoy has no listener {name}: {[x['name'] for x in listeners]}")


@pytest.fixture
def mesh_up(tmp_path: Path) -> Iterator[Callable[..., Mesh]]:
    """``mesh_up(["canary"], "--namespace", "istio-test")`` -> a running Mesh."""
    started: list[Mesh] = []

    def up(scenarios: list[str], *options: str, extra: dict[str, str] | None = None) -> Mesh:
        workdir = tmp_path
        files: list[str] = []
        for scenario in scenarios:
            target = workdir / scenario
            shutil.copytree(SEED / scenario, target, dirs_exist_ok=True)
            files += ["-f", str(target)]
        for name, text in (extra or {}).items():
            (workdir / name).write_text(text)
            files += ["-f", str(workdir / name)]
        mesh = Mesh(workdir, {})
        started.append(mesh)
        chaosmesh("mesh", "up", *files, *options, cwd=workdir)
        mesh.state = json.loads((workdir / ".chaosmesh" / "mesh.json").read_text())
        return mesh

    try:
        yield up
    finally:
        for mesh in started:
            pids = mesh.state.get("pids") or []
            chaosmesh("mesh", "down", cwd=mesh.workdir, check=False)
            survivors = [p for p in pids if alive(int(p["pid"]), p.get("started"))]
            assert not survivors, f"processes survived mesh down: {survivors}"
            assert not (mesh.state_dir / "mesh.json").exists()
