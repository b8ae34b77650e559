"""The httpbin workload: the real httpbin application (PyPI ``httpbin``) under waitress.

Why waitress: one light process with no dependencies of its own, HTTP/1.1 keep-alive,
chunked request bodies, and TCP_NODELAY on by default, so no Nagle stall; its latency beside
cheroot's is in benchmarks/bench_workloads.py. gunicorn would add a master and worker
processes.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

from ..ports import reusable_listener
from .capacity import Capacity, limit_wsgi

THREADS = 16  # httpbin's /delay sleeps in its thread; enough for a fortio run at c=16
# Longer than a sidecar's upstream idle timeout would make sense; waitress's default of
# 120 s would close keep-alive connections the sidecar still means to reuse.
CHANNEL_TIMEOUT = 3600


def run(host: str, port: int, name: str, capacity: Capacity | None = None) -> None:
    """Serve httpbin; with ``capacity``, behind that many workers and a queue (each waiting
    request holds a waitress thread, so there are at least as many threads as workers)."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    from httpbin import app as httpbin
    from waitress import create_server

    app = httpbin if capacity is None else limit_wsgi(httpbin, capacity)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # waitress would wait for running requests (a /delay/10) before exiting: don't.
        sys.stderr.write(f"{name}: stopping\n")
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The daemon keeps the port reserved (mesh.ports) until this binds it too.
    server = create_server(
        app,
        sockets=[reusable_listener(host, port)],
        threads=max(THREADS, capacity.workers) if capacity is not None else THREADS,
        channel_timeout=CHANNEL_TIMEOUT,
        connection_limit=1000,
        ident="httpbin",
    )
    server.run()
