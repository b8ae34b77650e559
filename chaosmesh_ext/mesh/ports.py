"""Loopback ports the daemon hands out, held so that no other program can take them.

The daemon chooses a port for every listener and every replica, and the program that serves
it (Envoy, a workload) binds it later — or again, when the watchdog restarts Envoy. A port
chosen by binding port 0 and closing the socket is free for anyone meanwhile: on a busy
machine any outgoing connection may take it as its ephemeral port, and ``mesh up`` then
fails with "Address already in use".

So a port stays *reserved* for as long as the mesh means to use it: a socket bound to it
with ``SO_REUSEPORT`` and never listening. The kernel lets only sockets that also set
``SO_REUSEPORT`` (same user) bind that port — Envoy does on Linux, and this package's
workloads do (``reusable_listener``) — refuses everyone else, and never picks it as an
ephemeral port. The reserving socket does not listen, so it accepts nothing: when the
server is gone, connections are refused, as they would be on a cluster.

Programs that do not set ``SO_REUSEPORT`` (the ``command`` workload's user programs) get
their port released just before they start (``release``). Without ``SO_REUSEPORT`` (not
Linux) reservations degrade to choosing a free port, as before.
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["LOOPBACK", "PortReservations", "free_port", "reusable_listener"]

LOOPBACK = "127.0.0.1"
_REUSEPORT = getattr(socket, "SO_REUSEPORT", None)


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS hands out now, not held (someone else may take it before it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def reusable_listener(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening socket on ``host:port`` that binds even while the daemon holds the port
    reserved (``SO_REUSEPORT`` where the system has it)."""
    return socket.create_server(
        (host, port), backlog=backlog, reuse_port=_REUSEPORT is not None and port != 0
    )


class PortReservations:
    """Ports held for the mesh until released (thread-safe)."""

    def __init__(self, host: str = LOOPBACK) -> None:
        self.host = host
        self._held: dict[int, socket.socket] = {}
        self._lock = threading.Lock()

    def reserve(self) -> int:
        """A new port, held until ``release`` or ``close``."""
        if _REUSEPORT is None:
            return free_port(self.host)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, _REUSEPORT, 1)
            sock.bind((self.host, 0))
        except OSError:
            sock.close()
            raise
        port = int(sock.getsockname()[1])
        with self._lock:
            self._held[port] = sock
        return port

    def held(self, port: int) -> bool:
        with self._lock:
            return port in self._held

    def release(self, *ports: int) -> None:
        """Stop holding ``ports`` (unknown ones are ignored)."""
        with self._lock:
            socks = [self._held.pop(port) for port in ports if port in self._held]
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()

    def keep_only(self, ports: set[int]) -> None:
        """Release every held port not in ``ports`` (after a change was rolled back)."""
        with self._lock:
            extra = [port for port in self._held if port not in ports]
        self.release(*extra)

    def close(self) -> None:
        with self._lock:
            held = list(self._held)
        self.release(*held)
