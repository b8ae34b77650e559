"""Ports the daemon chose stay its own until the program meant to serve them binds them.

The old way (bind port 0, close, pass the number on) left each port free for anyone until
Envoy or the replica bound it: on a busy machine an outgoing connection took it now and then
and ``mesh up`` failed with "Address already in use". These tests take the other program's
place: whatever they bind must be refused while the mesh holds the port.
"""

from __future__ import annotations

import errno
import socket
import threading
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.apply import Applier
from chaosmesh_ext.mesh.envoy import EnvoyProcess
from chaosmesh_ext.mesh.paths import StatePaths
from chaosmesh_ext.mesh.ports import PortReservations, reusable_listener

HOST = "127.0.0.1"


def _taken_by_another_program(port: int) -> bool:
    """Whether a program that does not share ports (most do not) can bind ``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            assert exc.errno == errno.EADDRINUSE
            return False
        return True


def test_a_reserved_port_is_refused_to_others_and_served_by_the_mesh_program() -> None:
    ports = PortReservations()
    port = ports.reserve()
    try:
        assert not _taken_by_another_program(port)
        # The program the mesh starts for it binds it all the same, and serves.
        with (
            reusable_listener(HOST, port) as listener,
            socket.create_connection((HOST, port), timeout=5),
        ):
            conn, _ = listener.accept()
            conn.close()
        # Between two of its binds (a restart), the port is still not anybody's.
        assert not _taken_by_another_program(port)
        # Nobody listens: a client is refused at once, as by a pod that is gone.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, port), timeout=5).close()
    finally:
        ports.close()
    assert _taken_by_another_program(port)


def test_released_ports_are_free_again_and_keep_only_drops_the_rest() -> None:
    ports = PortReservations()
    a, b, c = ports.reserve(), ports.reserve(), ports.reserve()
    try:
        ports.release(a)
        assert _taken_by_another_program(a)
        ports.keep_only({b})
        assert not _taken_by_another_program(b)
        assert _taken_by_another_program(c)
        assert ports.held(b) and not ports.held(c)
    finally:
        ports.close()


def test_the_daemon_holds_listener_and_replica_ports_before_anything_binds_them(
    tmp_path: Path,
) -> None:
    # The apply transaction chooses listener ports before Envoy exists and replica ports
    # before the replicas bind: each must already be out of other programs' reach.
    paths = StatePaths(tmp_path / "state")
    applier = Applier(paths, "default", EnvoyProcess(paths.root), cancel=threading.Event())
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {"selector": {"app": "echo"}, "ports": [{"port": 8080}]},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "echo"}},
            "template": {
                "metadata": {"labels": {"app": "echo"}},
                "spec": {"containers": [{"name": "echo", "image": "example/echo:1"}]},
            },
        },
    }
    try:
        applier.apply([service], [deployment])
        listener_ports = list(applier.listener_ports.values())
        replica_ports = [r.port for r in applier.all_replicas()]
        assert listener_ports and len(replica_ports) == 2
        for port in listener_ports + replica_ports:
            assert not _taken_by_another_program(port), port
    finally:
        applier.stop()
    for port in listener_ports + replica_ports:
        assert _taken_by_another_program(port), port  # all given back when the mesh stops
