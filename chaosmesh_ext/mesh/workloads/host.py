"""A replica host: one process serving many replicas of built-in kinds, each as if on its own.

``python -S -m chaosmesh_ext.mesh.workloads host`` reads orders on stdin, one JSON object a
line, from the daemon (``hosting.ReplicaHosts``)::

    {"args": ["echo", "--port", "41234", ...], "env": {...}, "log": "...", "holder": 4242}

``args`` is the command line the replica would run with as its own process, ``env`` its
sidecar variables, ``log`` its log file, ``holder`` the pid of its holder process
(``holder``): the pod's process. Each replica gets its own listener on its own port, its
own handler (identity, capacity limit, sidecar), its own log file and its own connections.
It is served while its holder lives:

- the holder ends (SIGTERM, SIGKILL, the daemon stopping it): the replica's listener and
  connections are closed at once, in-flight requests dropped, as its own process exiting
  would drop them; the other replicas are not touched;
- the holder is stopped (SIGSTOP): the replica's requests wait until it is continued, as a
  frozen process's would (new connections still complete in the kernel's backlog).

Once a replica is closed, the host writes its holder's pid on stdout: the daemon sees the
pod end only then, as it sees a process end after its port closed. The host exits when the
daemon closes its stdin (or dies: its parent-death signal). Like
the replicas it replaces, it imports no typing, dataclasses or asyncio (see ``_http``); the
hosts of fortio and httpbin replicas (``... host fortio``, ``... host httpbin``) run this
same loop with their kind's ``build`` (``fortio_replica``, ``httpbin_replica``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import threading
import time

from ..ports import reusable_listener
from . import _http

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO

    from ._http import Handler, Request, Response

    Build = Callable[[list[str], dict[str, str], int], tuple[Any, Handler]]

FROZEN_POLL_S = 0.02


def frozen(holder: int) -> bool:
    """Whether the holder process is stopped (SIGSTOP, or a debugger's stop)."""
    try:
        with open(f"/proc/{holder}/stat", "rb") as stat:
            fields = stat.read()
    except OSError:
        return False
    # "pid (comm) S ...": the state follows the last ')' (comm may hold anything).
    state = fields[fields.rfind(b")") + 2 : fields.rfind(b")") + 3]
    return state in (b"T", b"t")


def pausable(handler: Handler, holder: int) -> Handler:
    """``handler``, waiting while the holder is stopped before it answers and before the
    answer leaves."""

    def handle(request: Request) -> Response:
        while frozen(holder):
            time.sleep(FROZEN_POLL_S)
        response = handler(request)
        while frozen(holder):
            time.sleep(FROZEN_POLL_S)
        return response

    return handle


class HostedReplica:
    """One replica in this host: its listener, its connections, its log."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        handler: Handler,
        log: TextIO,
        holder: int,
        on_stop: Callable[[], object] | None = None,
        serve: Callable[[socket.socket], object] | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.on_stop = on_stop  # what else the replica's exit ends (a fortio's load runs)
        self.serve = serve  # a server of its own on the listener (httpbin's waitress)
        self.log = log
        self.holder = holder
        self.listener = reusable_listener(host, port)
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.stopped = False

    def start(self) -> None:
        if self.serve is not None:
            self.serve(self.listener)
            return
        _http.start_thread(self._accept)  # SIGTERM is the host's main thread's (see there)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # closed by stop()
            with self.lock:
                if self.stopped:
                    sock.close()
                    return
                self.connections.add(sock)
            # Served by the host's shared threads while it has a request, parked between.
            _http.server().adopt(sock, self.handler, self.name, self._closed)

    def _closed(self, sock: socket.socket) -> None:
        with self.lock:
            self.connections.discard(sock)

    def stop(self) -> None:
        """Close the listener and drop every connection (what the process's exit did)."""
        if self.on_stop is not None:
            self.on_stop()
        with self.lock:
            self.stopped = True
            connections = list(self.connections)
        for sock in (self.listener, *connections):
            try:
                # Wakes the thread serving it, or its parking: either then closes it.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.listener.close()
        _http.say(self.name, "stopping")
        if _http.LOGS.get(self.name) is self.log:
            del _http.LOGS[self.name]  # a replacement with the same name keeps its own
        self.log.close()


def start_replica(order: dict[str, Any], build: Build) -> HostedReplica | None:
    """Start what ``order`` describes; None (and the holder killed) when it cannot run."""
    holder = int(order["holder"])
    # Open for the replica's life, closed by stop() (not a with block).
    log = open(order["log"], "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    name = "workload"
    try:
        args, handler = build(list(order["args"]), dict(order.get("env") or {}), holder)
        name = f"{args.kind} {args.namespace}/{args.pod}"
        _http.LOGS[name] = log
        replica = HostedReplica(
            name,
            args.host,
            args.port,
            pausable(handler, holder),
            log,
            holder,
            getattr(handler, "close", None),
            getattr(handler, "serve", None),
        )
    except (Exception, SystemExit) as exc:
        # What its own process would have printed before exiting: in its log, then it ends.
        log.write(f"{_http.log_time(time.time())} {name}: cannot start: {exc}\n")
        log.close()
        _http.LOGS.pop(name, None)
        try:
            os.kill(holder, signal.SIGKILL)
        except OSError:
            pass
        return None
    _http.say(name, f"listening on {args.host}:{args.port}")
    replica.start()
    return replica


def _raise_file_limit() -> None:
    """As many open files as allowed: each replica holds a listener, a log, a pidfd and its
    connections, where a process of its own had the whole (often 1024) soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def serve_forever(build: Build) -> int:
    """Serve the replicas ordered on stdin until it closes. ``build(args, env, holder)``
    returns the parsed arguments and the handler of one replica. A handler may also have
    ``close()``, run first when the replica stops, and ``serve(listener)``: then it serves
    the replica's listener itself (and ``close()`` must end that)."""

    def leave(signum: int, frame: object) -> None:
        os._exit(0)  # the replicas' connections die with the process, as theirs would

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    _raise_file_limit()
    orders = sys.stdin.fileno()
    released = sys.stdout.fileno()
    poller = select.poll()
    poller.register(orders, select.POLLIN)
    by_fd: dict[int, HostedReplica] = {}
    pending = b""
    while True:
        for fd, _ in poller.poll():
            if fd != orders:
                replica = by_fd.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                replica.stop()
                os.write(released, b"%d\n" % replica.holder)  # the daemon waits for this
                continue
            data = os.read(orders, 65536)
            if not data:
                return 0  # the daemon is gone or done with us
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                order = json.loads(line)
                try:
                    watch = os.pidfd_open(int(order["holder"]))
                except OSError:
                    continue  # its holder already ended: the pod is over before it began
                started = start_replica(order, build)
                if started is None:
                    os.close(watch)
                    continue
                by_fd[watch] = started
                poller.register(watch, select.POLLIN)
