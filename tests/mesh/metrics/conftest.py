"""Fixtures for the metrics exporter: a real exporter over hand-written state, and (when the
binary is installed) a real Prometheus (tests/support/prometheus_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.metrics import Exporter, start_exporter
from tests.support.metrics_helpers import write_mesh_state
from tests.support.prometheus_fixtures import prometheus_binary

__all__ = ["exporter", "prometheus_binary", "state_dir"]


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
