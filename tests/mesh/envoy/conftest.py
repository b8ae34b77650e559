"""Fixtures for tests that run a real Envoy: local upstreams and an EnvoyProcess, all stopped."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.envoy import EnvoyProcess
from chaosmesh_ext.mesh.translate import EnvoyResources
from tests.support.upstream import Upstream


@pytest.fixture
def upstreams() -> Iterator[Callable[[str], Upstream]]:
    started: list[Upstream] = []

    def make(name: str) -> Upstream:
        server = Upstream(name).start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def envoy(tmp_path: Path) -> Iterator[Callable[..., EnvoyProcess]]:
    started: list[EnvoyProcess] = []

    def start(resources: EnvoyResources, concurrency: int = 1) -> EnvoyProcess:
        proc = EnvoyProcess(tmp_path, concurrency=concurrency)
        started.append(proc)
        proc.start(resources)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


def request(
    port: int,
    host: str,
    path: str = "/",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], str]:
    """One GET through an Envoy listener: (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        body = resp.read().decode()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def access_entries(state: Path, want: int, timeout: float = 5.0) -> list[dict]:
    """access.jsonl once it holds at least ``want`` lines (Envoy flushes every 50 ms)."""
    path = state / "access.jsonl"
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= want or time.monotonic() > deadline:
            return [json.loads(x) for x in lines]
        time.sleep(0.02)
