"""Fixtures for the metrics layer: a real exporter over hand-written state, and (when the
binary is installed) a real Prometheus scraping it on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from metrics_helpers import write_mesh_state

from chaosmesh_ext.mesh.metrics import Exporter, start_exporter
from chaosmesh_ext.mesh.prometheus_server import (
    PrometheusNotInstalled,
    PrometheusServer,
    find_binary,
    start_prometheus,
)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    write_mesh_state(tmp_path)
    return tmp_path


@pytest.fixture
def exporter(state_dir: Path) -> Iterator[Exporter]:
    running = start_exporter(state_dir)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    try:
        return find_binary()
    except PrometheusNotInstalled as exc:
        pytest.skip(f"real Prometheus tests need the binary: {exc}")


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
