"""Fixtures: the embedded API server alone, with a fake data plane behind its apply hook.

The server, the store and the clients are all real (HTTP on 127.0.0.1, the official
kubernetes client, the kubectl binary); only Envoy is replaced, by a hook that records what
it was asked to apply and can be told to reject the next push.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaosmesh_ext.mesh.api import ApiServer, ApplyRejected, Cause, Store
from tests.support.tools import require_tool


@dataclass
class FakeDataPlane:
    """Stands in for translate + EnvoyProcess.apply."""

    pushes: list[dict[str, list[dict[str, Any]]]] = field(default_factory=list)
    reject_with: str | None = None
    gate: threading.Event | None = None  # when set, a push waits for it
    entered: threading.Event = field(default_factory=threading.Event)

    def apply(self, state: dict[str, list[dict[str, Any]]]) -> str:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(30), "test never released the push"
        if self.reject_with:
            reason, self.reject_with = self.reject_with, None
            raise ApplyRejected(reason)
        self.pushes.append(state)
        return str(len(self.pushes))


def fake_validate(obj: dict[str, Any]) -> list[Cause]:
    """A few of Istio's rules, enough to drive the 422 path (istio.validate is tested apart)."""
    causes = []
    for i, http in enumerate((obj.get("spec") or {}).get("http") or []):
        for j, dest in enumerate(http.get("route") or []):
            if dest.get("weight", 0) < 0:
                causes.append(Cause(f"spec.http[{i}].route[{j}].weight", "must be >= 0"))
        pct = ((http.get("fault") or {}).get("abort") or {}).get("percentage", {}).get("value")
        if pct is not None and not 0 <= pct <= 100:
            causes.append(
                Cause(
                    f"spec.http[{i}].fault.abort.percentage.value",
                    f"must be in [0, 100], got {pct}",
                )
            )
    return causes


@dataclass
class Api:
    server: ApiServer
    store: Store
    plane: FakeDataPlane
    kubeconfig: Path

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    plane = FakeDataPlane()
    store = Store(validate=fake_validate, apply=plane.apply)
    server = ApiServer(store).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: chaosmesh\n  cluster:\n"
        f"    server: {server.url}\ncontexts:\n- name: chaosmesh\n  context:\n"
        "    cluster: chaosmesh\n    user: chaosmesh\n    namespace: default\n"
        "current-context: chaosmesh\nusers:\n- name: chaosmesh\n  user: {}\n"
    )
    try:
        yield Api(server, store, plane, kubeconfig)
    finally:
        plane.gate = None
        server.stop()


@pytest.fixture
def kube(api: Api) -> Iterator[client.ApiClient]:
    config = client.Configuration()
    config.host = api.url
    api_client = client.ApiClient(config)
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def kubectl(api: Api, tmp_path: Path):
    binary = require_tool("kubectl")

    def run(
        *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [binary, "--kubeconfig", str(api.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc

    return run
