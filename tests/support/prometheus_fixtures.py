"""Fixtures shared by the exporter's tests (tests/mesh/metrics) and the Prometheus probes'
tests (tests/prometheus): the real Prometheus binary, and a real Prometheus scraping a real
exporter over hand-written mesh state on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.metrics import Exporter, start_exporter
from chaosmesh_ext.mesh.prometheus_server import (
    PrometheusServer,
    find_binary,
    start_prometheus,
)
from tests.support.metrics_helpers import write_mesh_state
from tests.support.tools import require_tool


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    require_tool("prometheus")
    return find_binary()


@pytest.fixture(scope="module")
def scraped_mesh(
    tmp_path_factory: pytest.TempPathFactory, prometheus_binary: str
) -> Iterator[tuple[Path, Exporter, PrometheusServer]]:
    """An exporter over a fresh state dir, scraped every 250 ms by a real Prometheus."""
    state = tmp_path_factory.mktemp("scraped-mesh")
    write_mesh_state(state)
    running = start_exporter(state)
    try:
        server = start_prometheus(state, [running.url], interval="250ms")
        try:
            yield state, running, server
        finally:
            server.stop()
    finally:
        running.stop()
