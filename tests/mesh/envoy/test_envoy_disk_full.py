"""A change that spans many xDS files, on a full filesystem: refused before Envoy sees any of
them. The files stay exactly as they were (no temp file, no new directory left behind), Envoy
serves what it served, and the same change goes through once there is space."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.envoy import EnvoyProcess
from chaosmesh_ext.mesh.translate import Endpoint, EnvoyResources, translate
from tests.support import mesh_seed as seed
from tests.support.full_disk import fill, small_filesystem

from .conftest import request

pytestmark = pytest.mark.envoy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listeners(resources: EnvoyResources) -> list[str]:
    return sorted(x["name"] for x in resources.listeners)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_multi_file_change_on_a_full_disk_changes_no_file_and_nothing_envoy_serves(
    tmp_path: Path, upstreams
) -> None:
    v1, v2, tomcat = upstreams("v1"), upstreams("v2"), upstreams("tomcat")
    ports = {"gateway_80": _free_port(), "0.0.0.0_8080": _free_port(), "0.0.0.0_80": _free_port()}
    endpoints = seed.canary_endpoints(v1.port, v2.port)
    canary = seed.snapshot(seed.CANARY, endpoints, listener_ports=ports)
    both = seed.snapshot(
        seed.CANARY + "---" + seed.TIMEOUT,
        [*endpoints, Endpoint("tomcat-0", "default", {"server": "tomcat"}, "127.0.0.1",
                              tomcat.port)],
        listener_ports=ports,
    )  # fmt: skip
    before_resources, after_resources = translate(canary), translate(both)
    # New clusters, new route configurations (new directories) and new listeners at once.
    assert {r["name"] for r in after_resources.routes} > {
        r["name"] for r in before_resources.routes
    }
    with small_filesystem(tmp_path / "state", "4m") as state:
        proc = EnvoyProcess(state)
        try:
            version = proc.start(before_resources)
            xds = state / "xds"
            files_before = _files(xds)
            dirs_before = sorted(p.name for p in (xds / "rds").iterdir())
            filler = fill(state)
            with pytest.raises(OSError) as refused:
                proc.apply(after_resources)
            assert refused.value.errno == errno.ENOSPC
            assert _files(xds) == files_before
            assert sorted(p.name for p in (xds / "rds").iterdir()) == dirs_before
            assert proc.version == version and proc.applied == before_resources
            assert sorted(proc.listener_addresses()) == _listeners(before_resources)
            assert request(ports["gateway_80"], "canary")[0] == 200

            filler.unlink()
            proc.apply(after_resources)
            assert sorted(proc.listener_addresses()) == _listeners(after_resources)
            assert _files(xds) != files_before
        finally:
            proc.stop()
