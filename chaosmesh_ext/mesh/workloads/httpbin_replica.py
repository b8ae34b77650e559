"""httpbin replicas in a replica host: the real httpbin under a waitress server per replica.

``python -m chaosmesh_ext.mesh.workloads host httpbin`` is a replica host (``host``) whose
replicas are httpbin (``httpbin_app``): Flask, Werkzeug and httpbin are imported once per
host (about 30 MB), not once per replica. Each replica keeps what its own process had:

- its own waitress server on its own port, with its own event loop thread, socket map,
  worker threads (:data:`httpbin_app.THREADS`, or its capacity's workers) and connection
  limit, so one replica's slow or stuck requests never hold another's workers;
- its capacity limit (``--capacity``), wrapped around the one shared application;
- its log: every record of a thread of the replica (its loop, its workers: waitress's
  messages, Flask's errors) goes to the replica's log, in the format of its own process;
- its lifecycle, through its holder: the holder ending closes the replica's listener and
  every connection at once (requests in flight dropped, as a process's exit drops them);
  the holder stopped (SIGSTOP) makes its requests wait before and after the application.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from waitress import wasyncore
from waitress.server import create_server
from waitress.task import ThreadedTaskDispatcher

from . import _http
from .__main__ import Args, parse_args
from .capacity import limit_wsgi, parse_capacity
from .host import FROZEN_POLL_S, frozen
from .httpbin_app import CHANNEL_TIMEOUT, THREADS

# How long a stopping replica waits for its event loop to close its sockets.
CLOSE_TIMEOUT = 5.0
# How long its worker threads get to finish what they were doing (a /delay/10) after that;
# it does not wait for them: their answers go nowhere.
WORKERS_TIMEOUT = 15.0

# Thread ident -> the name of the replica it works for (its log's key in ``_http.LOGS``).
_OWNERS: dict[int, str] = {}

Wsgi = Callable[..., object]  # a WSGI application (as capacity.limit_wsgi takes one)


class _ReplicaLogs(logging.Handler):
    """Writes each record into the log of the replica whose thread emitted it, as its own
    process's ``logging.basicConfig`` would (the host's stderr for the host's own)."""

    def emit(self, record: logging.LogRecord) -> None:
        name = _OWNERS.get(record.thread or 0)
        try:
            text = self.format(record)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
            stamp += f",{int(record.msecs):03d}"
            line = f"{stamp} {name or 'replica host'} {record.levelname} {text}\n"
            stream = _http.log_of(name) if name is not None else sys.stderr
            stream.write(line)
            stream.flush()
        except (OSError, ValueError):
            pass  # the replica ended and closed its log while a worker still logged


def route_logs() -> None:
    """Every record at INFO and up to its replica's log (waitress, Flask and httpbin log
    through the root logger's handlers)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(_ReplicaLogs())


class _Workers(ThreadedTaskDispatcher):
    """A replica's waitress worker threads, each known as the replica's (its log)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def handler_thread(self, thread_no: int) -> None:
        ident = threading.get_ident()
        _OWNERS[ident] = self.name
        try:
            super().handler_thread(thread_no)
        finally:
            _OWNERS.pop(ident, None)


def pausable_app(app: Wsgi, paused: Callable[[], bool]) -> Wsgi:
    """``app``, waiting while the replica's holder is stopped, before it runs and after."""

    def wait() -> None:
        while paused():
            time.sleep(FROZEN_POLL_S)

    def served(environ: dict[str, Any], start_response: Callable[..., Any]) -> object:
        wait()
        result = app(environ, start_response)
        wait()
        return result

    return served


class HttpbinReplica:
    """One hosted httpbin replica: it serves its listener with a waitress server of its own
    (``serve``), ``close()`` is what its process exiting did."""

    def __init__(self, app: Wsgi, name: str, threads: int) -> None:
        self.app = app
        self.name = name
        self.threads = threads
        self.map: dict[int, Any] = {}
        self.server: Any = None
        self.workers = _Workers(name)
        self.done = threading.Event()

    def __call__(self, request: _http.Request) -> _http.Response:
        # Never called: the replica's waitress server answers on its listener (serve).
        return _http.text_response(500, "httpbin is served by waitress\n")

    def serve(self, listener: socket.socket) -> None:
        # Waitress's threads, started here and later by the loop, leave SIGTERM to the host's
        # main thread.
        with _http.stop_signals_blocked():
            self.workers.set_thread_count(self.threads)
            self.server = create_server(
                self.app,
                map=self.map,
                _dispatcher=self.workers,
                sockets=[listener],
                threads=self.threads,
                channel_timeout=CHANNEL_TIMEOUT,
                connection_limit=1000,
                ident="httpbin",
            )
            _http.start_thread(self._loop, name=f"waitress {self.name}")

    def _loop(self) -> None:
        ident = threading.get_ident()
        _OWNERS[ident] = self.name
        try:
            adj = self.server.adj
            wasyncore.loop(timeout=adj.asyncore_loop_timeout, map=self.map, use_poll=True)
        finally:
            _OWNERS.pop(ident, None)
            self.done.set()

    def close(self) -> None:
        if self.server is None:
            return
        # The loop's own thread closes every socket of the replica (waitress is not thread
        # safe); an empty map ends the loop.
        self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.map))
        self.done.wait(CLOSE_TIMEOUT)
        _http.start_thread(lambda: self.workers.shutdown(timeout=WORKERS_TIMEOUT))


def build(argv: list[str], environ: dict[str, str], holder: int) -> tuple[Args, HttpbinReplica]:
    """One httpbin replica of a replica host: its parsed command line and its server."""
    from httpbin import app as httpbin

    args = parse_args(argv, ("httpbin",))
    app: Wsgi = httpbin
    threads = THREADS
    if args.capacity:
        capacity = parse_capacity(args.capacity, "--capacity")
        app = limit_wsgi(app, capacity)
        threads = max(THREADS, capacity.workers)  # each waiting request holds a thread
    name = f"{args.kind} {args.namespace}/{args.pod}"
    return args, HttpbinReplica(pausable_app(app, lambda: frozen(holder)), name, threads)
