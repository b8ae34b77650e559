"""fortio replicas in a replica host: one fortio REST API per replica, many to a process.

``python -m chaosmesh_ext.mesh.workloads host fortio`` is a replica host (``host``) whose
replicas are the load layer's fortio-compatible server (``chaosmesh_ext.load.rest``). It is a
host of its own kind, apart from the echo and proxy one, because the load engine imports
asyncio, uvloop, ssl and the rest (about 25 MB): paid once per host, not once per replica.

Each replica keeps what its own process had: its port and REST API, its runs and saved
results (a data directory of its own, removed when the replica ends, as a pod's files go
with it), its sidecar (the outbound listeners and the source identity its load carries), and
its log: the load engine's warnings (``-log-errors``, ``-abort-on``) land in the log of the
replica whose run wrote them. Its lifecycle follows its holder: the holder ending (SIGTERM,
SIGKILL) ends the replica's runs at once and drops their connections, calls in flight
included; the holder stopped (SIGSTOP) pauses its runs' calls and its API until continued.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.load import rest

from . import _http
from .__main__ import Args, parse_args
from .host import frozen

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._http import Request, Response

# How long a holder's state read from /proc stays good: a run at 1000 calls a second would
# otherwise read it twice per call.
FROZEN_CACHE_S = 0.01

# The name (``_http.LOGS`` key) of each replica's API, for routing its runs' log records.
_NAMES: dict[rest.FortioApi, str] = {}
_NAMES_LOCK = threading.Lock()


def frozen_check(holder: int) -> Callable[[], bool]:
    """Whether ``holder`` is stopped, read at most every :data:`FROZEN_CACHE_S`."""
    last = [0.0, False]
    lock = threading.Lock()

    def paused() -> bool:
        now = time.monotonic()
        with lock:
            if now - last[0] >= FROZEN_CACHE_S:
                last[0], last[1] = now, frozen(holder)
            return bool(last[1])

    return paused


class _RunLogs(logging.Handler):
    """Writes a load run's log records into the log of the replica that runs it (the host's
    own stderr for records outside any run)."""

    def emit(self, record: logging.LogRecord) -> None:
        api = getattr(rest.RUNNING, "api", None)
        with _NAMES_LOCK:
            name = _NAMES.get(api) if api is not None else None
        try:
            if name is None:
                _http.say("replica host", self.format(record))
            else:
                _http.say(name, self.format(record))
        except (OSError, ValueError):
            pass  # the replica ended and closed its log while its run still logged


def route_run_logs() -> None:
    """Send the load engine's records (warnings and up, as its own process shows them) to
    the replicas' logs."""
    logger = logging.getLogger(rest.log.name)
    handler = _RunLogs(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False


class FortioReplica:
    """The handler of one hosted fortio replica: its REST API over the replica host's HTTP
    core; ``close()`` is what its process exiting did."""

    def __init__(self, api: rest.FortioApi, name: str) -> None:
        self.api = api
        self.name = name

    def __call__(self, request: Request) -> Response:
        status, content_type, body = self.api.answer(
            request.method, request.target, request.body, request.header("Host")
        )
        return _http.Response(
            status, body, [("Content-Type", content_type), ("Server", "fortio-chaosmesh")]
        )

    def close(self) -> None:
        self.api.close(remove_data=True)
        with _NAMES_LOCK:
            _NAMES.pop(self.api, None)


def build(argv: list[str], environ: dict[str, str], holder: int) -> tuple[Args, FortioReplica]:
    """One fortio replica of a replica host: its parsed command line and its handler."""
    args = parse_args(argv, ("fortio",))
    api = rest.FortioApi(
        args.host, args.port, Sidecar.from_env(environ), paused=frozen_check(holder)
    )
    name = f"{args.kind} {args.namespace}/{args.pod}"
    with _NAMES_LOCK:
        _NAMES[api] = name
    return args, FortioReplica(api, name)
