"""Fixtures for the workload tests: start real workload processes, stop them by pid.

In modules that set ``REPLICA_HOSTS_TOO = True``, every test that starts workloads runs
twice: with every replica a process of its own, and with replicas in shared replica hosts
(``workloads.hosting``), as the daemon runs echo and proxy replicas — the same behaviour
either way.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.mesh.pods.runtime import Launcher, ReplicaProcess
from chaosmesh_ext.mesh.workloads import WorkloadSpec, launch, wait_ready
from chaosmesh_ext.mesh.workloads.hosting import HostedReplica, ReplicaHosts

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now (as the daemon picks one: bind port 0)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def call(
    port: int,
    path: str = "/",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 15.0,
    conn: http.client.HTTPConnection | None = None,
) -> Answer:
    """One HTTP request; on ``conn`` when given (keep-alive), else on a new connection."""
    own = conn is None
    connection = conn or http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        if own:
            connection.close()


OWN_PROCESS = "own process"
REPLICA_HOST = "replica host"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "launcher" in metafunc.fixturenames and getattr(metafunc.module, "REPLICA_HOSTS_TOO", False):
        metafunc.parametrize("launcher", [OWN_PROCESS, REPLICA_HOST], indirect=True)


@pytest.fixture
def launcher(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Launcher]:
    """How replicas start: ``launch`` (the default), or through replica hosts of two
    replicas each, so a test with several replicas spans hosts too."""
    if getattr(request, "param", OWN_PROCESS) == OWN_PROCESS:
        yield launch
        return
    hosts = ReplicaHosts(tmp_path / "hosts", tmp_path / "bin", per_host=2)
    try:
        yield hosts.launch
    finally:
        hosts.stop()


@dataclass
class Running:
    process: ReplicaProcess
    spec: WorkloadSpec

    @property
    def port(self) -> int:
        return self.spec.port

    def log(self) -> str:
        return self.spec.log_path.read_text(errors="replace")


def stop(process: ReplicaProcess) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


StartWorkload = Callable[..., Running]


@pytest.fixture
def start_workload(tmp_path: Path, launcher: Launcher) -> Iterator[StartWorkload]:
    """Start a workload and wait until it accepts; every one started is stopped after."""
    started: list[ReplicaProcess] = []

    def start(
        kind: str,
        deployment: str = "appv1",
        version: str | None = "v1",
        annotations: Mapping[str, str] | None = None,
        sidecar: Sidecar | None = None,
        labels: Mapping[str, str] | None = None,
        pod: str | None = None,
        ready: bool = True,
    ) -> Running:
        pod = pod or f"{deployment}-{len(started)}"
        spec = WorkloadSpec(
            kind=kind,
            deployment=deployment,
            namespace="istio-test",
            pod=pod,
            port=free_port(),
            log_path=tmp_path / f"{pod}.log",
            labels=dict(labels or {}),
            version=version,
            annotations=dict(annotations or {}),
            sidecar=sidecar or Sidecar(),
        )
        process = launcher(spec)
        started.append(process)
        if ready:
            wait_ready(HOST, spec.port, 20.0, process=process)
        return Running(process, spec)

    try:
        yield start
    finally:
        for process in started:
            stop(process)


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[ReplicaHosts]:
    """Replica hosts of 3 replicas each; every replica started is killed (continued first,
    if a test stopped it) and every host stopped after the test."""
    hosts = ReplicaHosts(tmp_path / "logs", tmp_path / "bin", per_host=3)
    started: list[HostedReplica] = []
    launch = hosts.launch

    def tracked(spec: WorkloadSpec) -> HostedReplica:
        replica = launch(spec)
        assert isinstance(replica, HostedReplica)
        started.append(replica)
        return replica

    hosts.launch = tracked  # type: ignore[method-assign]
    try:
        yield hosts
    finally:
        for replica in started:
            if replica.poll() is None:
                os.kill(replica.pid, signal.SIGCONT)  # a test that failed while it was stopped
                replica.kill()
                replica.wait(10)
        hosts.stop()
