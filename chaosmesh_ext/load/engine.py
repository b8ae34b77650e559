"""Run one load test: options in, fortio result JSON out.

Glue between the parts: the scheduler (``periodic``) drives calls that the HTTP client
(``http_client``) performs; their measurements become fortio's JSON (``results``). Runs on
its own event loop (uvloop when installed), so it can be called from plain code, a REST
server thread or a Chaos Toolkit probe.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaosmesh_ext.errors import LoadError

from .._sidecar import Sidecar
from .http_client import ConnectionSettings, HttpConnection, build_request, code_is_ok
from .options import LoadOptionError, LoadOptions, parse_url, validate
from .periodic import (
    Call,
    RunStats,
    StopToken,
    format_go_duration,
    open_loop_lanes,
    plan,
    run_closed,
    run_open,
)
from .pod_dns import unresolvable_reason
from .results import base_result, error_result, ret_codes
from .stats import Histogram

# fortio logs non-OK answers (-log-errors) and an -abort-on stop as warnings and info lines;
# the command line shows this logger at its -loglevel.
log = logging.getLogger("chaosmesh_ext.load")
# How often a paused run (StopToken.paused) looks whether it may go on.
PAUSED_POLL_S = 0.02

LOCAL_NOTE = (
    "load ran in the chaos process (via=local): Istio applies faults and breakers in the"
    " client's sidecar, so mesh rules apply here only when the URL goes through a gateway"
)


class LoadTargetError(LoadError, ConnectionError):
    """The target cannot be reached at all; nothing was measured."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


def first_hop_is_mesh(sidecar: Sidecar, host: str, port: int) -> bool:
    """True when a call to ``host:port`` goes to the sidecar's outbound listener."""
    return sidecar.connect_address(host, port) != (host, port)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return None
    return uvloop.new_event_loop


@dataclass(frozen=True)
class Progress:
    """How far a run has got, for a progress line."""

    elapsed: float  # seconds since the first call
    calls: int
    errors: int  # answers that were not 2xx/418, socket errors included
    planned_calls: int  # 0 when the run is bounded by time
    planned_seconds: float  # <= 0 when bounded by calls or until stopped


ProgressCallback = Callable[[Progress], None]


def run(
    options: LoadOptions,
    stop: StopToken | None = None,
    run_id: int = 0,
    *,
    progress: ProgressCallback | None = None,
    progress_every: float = 5.0,
) -> dict[str, Any]:
    """Run the load described by ``options`` and return fortio's result JSON.

    Raises ``LoadOptionError`` for bad options and :class:`LoadTargetError` when the target
    cannot even be connected to, in both cases before any request is sent. ``progress`` is
    called every ``progress_every`` seconds while the run lasts (never for a short run).
    """
    validate(options)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(run_async(options, stop or StopToken(), run_id, progress, progress_every))


class _Stats:
    """Per-run HTTP counters shared by the calls (one loop, so no locking)."""

    def __init__(self, options: LoadOptions) -> None:
        self.codes: dict[int, int] = {}
        self.sizes = Histogram(0.0, 100.0)
        self.header_sizes = Histogram(0.0, 5.0)
        self.classes: dict[str, int] = {}
        self.regex = re.compile(options.classify_regex.encode()) if options.classify_regex else None
        self.header = options.classify_header.lower().encode() if options.classify_header else None

    def classify(self, conn: HttpConnection, code: int) -> None:
        info = conn.info
        key = "unclassified"
        if code == -1:
            key = "error"
        elif self.header is not None:
            for line in info.headers.split(b"\r\n")[1:]:
                name, _, hval = line.partition(b":")
                if name.strip().lower() == self.header:
                    key = hval.strip().decode("latin-1")
                    break
        elif self.regex is not None:
            m = self.regex.search(info.body)
            if m:
                # A named group wins, else the first group, else the whole match.
                named = [v for v in m.groupdict().values() if v is not None]
                value: bytes = named[0] if named else m.group(1 if m.re.groups else 0)
                key = value.decode("utf-8", "replace")
        if key == "unclassified" and not 200 <= code < 300:
            # An error answer (an injected abort, a breaker's 503) names no version: count it
            # by its status, so a split reads {"v1": 0.9, "503": 0.1}.
            key = str(code)
        self.classes[key] = self.classes.get(key, 0) + 1


def _make_call(
    conn: HttpConnection, st: _Stats, options: LoadOptions, stop: StopToken, thread: int
) -> Call:
    """One connection's call; non-OK answers are also logged (``-log-errors``) and may stop
    the whole run (``-abort-on``), as fortio's HTTP runner does."""
    on_error: Callable[[int], None] | None = None
    if options.abort_on is not None or options.log_errors:
        abort_on = options.abort_on
        log_errors = options.log_errors

        def on_error(code: int) -> None:
            if log_errors:
                log.warning("Non ok http code %d (thread %d)", code, thread)
            if code == abort_on and not stop.stopped:
                log.info("Aborted run because of http code %d", code)
                stop.stop()

    fetch = conn.fetch
    paused = stop.paused
    if paused is not None:
        unpaused = conn.fetch

        async def fetch() -> int:
            # A stopped (SIGSTOP'd) client sends nothing and reads no answer until continued.
            while paused():
                await asyncio.sleep(PAUSED_POLL_S)
            code = await unpaused()
            while paused():
                await asyncio.sleep(PAUSED_POLL_S)
            return code

    codes = st.codes
    sizes = st.sizes.record
    header_sizes = st.header_sizes.record
    classify = st.classify if (st.regex is not None or st.header is not None) else None

    async def call() -> bool:
        code = await fetch()
        codes[code] = codes.get(code, 0) + 1
        if code == -1:
            sizes(0.0)
            header_sizes(0.0)
        else:
            info = conn.info
            sizes(float(info.size))
            header_sizes(float(info.header_size))
        if classify is not None:
            classify(conn, code)
        if 200 <= code < 300 or code == 418:
            return True
        if on_error is not None:
            on_error(code)
        return False

    return call


async def run_async(
    options: LoadOptions,
    stop: StopToken,
    run_id: int = 0,
    progress: ProgressCallback | None = None,
    progress_every: float = 5.0,
) -> dict[str, Any]:
    """The body of :func:`run`, for callers that already have an event loop."""
    validate(options)
    target = parse_url(options.url)
    sidecar = options.sidecar if options.sidecar is not None else Sidecar.from_env()
    method = options.effective_method
    request = build_request(
        target,
        method,
        options.headers,
        options.payload,
        sidecar.identity_headers(),
        http10=options.http10,
        keepalive=options.keepalive,
    )
    try:
        settings = ConnectionSettings.from_options(options, target)
    except (OSError, ssl.SSLError) as exc:
        option = "-cacert" if options.ca_cert and not options.cert else "-cert/-key"
        raise LoadOptionError(option, f"cannot load the certificate: {exc}") from None
    capture = bool(options.classify_regex or options.classify_header)
    st = _Stats(options)
    conns: list[HttpConnection] = []

    def new_conn() -> HttpConnection:
        conn = HttpConnection(
            target,
            request,
            options.timeout,
            sidecar,
            head_only=method == "HEAD",
            capture=capture,
            resolution=options.resolution,
            settings=settings,
            offset=options.offset,
        )
        conn.abandoned = stop.abandoned
        conns.append(conn)
        return conn

    # Fail fast, before any request, when the name would not resolve in a pod of the mesh
    # (the sidecar takes any host by port alone) or nothing listens at the target.
    if first_hop_is_mesh(sidecar, target.host, target.port):
        reason = await unresolvable_reason(target.host, sidecar)
        if reason:
            raise LoadTargetError(options.url, reason)
    loop = asyncio.get_running_loop()

    def drop_connections() -> None:
        for conn in conns:
            conn.abandon()  # the calls in flight end as errors; the workers see the stop

    def abandoned() -> None:
        try:
            loop.call_soon_threadsafe(drop_connections)
        except RuntimeError:
            pass  # the run ended meanwhile and its loop is closed

    stop.on_abandon(abandoned)
    first = new_conn()
    proto = await first._connect(asyncio.get_running_loop().time() + options.timeout)
    if proto is None:
        raise LoadTargetError(options.url, first.last_error or "connection failed")
    first.proto = proto
    start_wall = time.time()
    reporter = _start_progress(options, st, progress, progress_every)

    if options.open_loop:
        total = options.exactly or int(options.qps * options.duration)
        max_lanes = options.max_connections or open_loop_lanes(
            options.qps, options.timeout, options.connections
        )
        lanes_made = 0

        def new_lane() -> Call:
            nonlocal lanes_made
            lanes_made += 1
            conn = first if lanes_made == 1 else new_conn()
            return _make_call(conn, st, options, stop, lanes_made - 1)

        requested = (
            f"exactly {options.exactly} calls"
            if options.exactly
            else format_go_duration(options.duration)
        )
        stats = await run_open(
            new_lane,
            total,
            options.qps,
            stop,
            max_lanes,
            initial_lanes=options.connections,
            resolution=options.resolution,
            requested_duration=requested,
            offset=options.offset,
        )
    else:
        p = plan(options.qps, options.connections, options.exactly, options.duration)
        while len(conns) < p.threads:
            new_conn()
        work = conns[: p.threads]
        for extra in conns[p.threads :]:
            extra.close()
        del conns[p.threads :]
        if options.exactly <= 0:
            # fortio's warm-up: one uncounted call per connection, in parallel unless
            # -sequential-warmup.
            if options.sequential_warmup:
                codes = [await c.fetch() for c in work]
            else:
                codes = await asyncio.gather(*(c.fetch() for c in work))
            bad = [(i, c) for i, c in enumerate(codes) if not code_is_ok(c)]
            if bad and not options.allow_initial_errors:
                i, code = bad[0]
                reason = work[i].last_error if code == -1 else f"HTTP {code}"
                for c in conns:
                    c.close()
                _stop_progress(reporter)
                return error_result(
                    options,
                    "warmup error",
                    f"error {code} for {options.url} ({reason}), thread# {i}",
                    start_wall,
                )
        calls = [_make_call(c, st, options, stop, i) for i, c in enumerate(work)]
        stats = await run_closed(
            calls,
            p,
            options.qps,
            options.duration,
            options.exactly,
            stop,
            resolution=options.resolution,
            nocatchup=options.nocatchup,
            jitter=options.jitter,
            uniform=options.uniform,
            offset=options.offset,
        )
    _stop_progress(reporter)
    for c in conns:
        c.close()
    return _result(options, stats, st, conns, run_id)


def _start_progress(
    options: LoadOptions, st: _Stats, progress: ProgressCallback | None, every: float
) -> asyncio.Task[None] | None:
    """A task calling ``progress`` every ``every`` seconds with the calls counted so far."""
    if progress is None:
        return None
    start = time.perf_counter()
    planned_seconds = options.duration if not options.exactly else 0.0

    async def report() -> None:
        while True:
            await asyncio.sleep(every)
            calls = sum(st.codes.values())
            errors = calls - sum(n for code, n in st.codes.items() if code_is_ok(code))
            progress(
                Progress(
                    time.perf_counter() - start, calls, errors, options.exactly, planned_seconds
                )
            )

    return asyncio.get_running_loop().create_task(report())


def _stop_progress(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()


def _result(
    options: LoadOptions, stats: RunStats, st: _Stats, conns: list[HttpConnection], run_id: int
) -> dict[str, Any]:
    res = base_result(options, stats.start_wall, run_id)
    count = stats.durations.count
    requested = stats.plan.requested_duration
    if options.exactly and count != options.exactly:
        requested += f", interrupted after {count}"
    connect = Histogram(options.offset, options.resolution)
    ip_counts: dict[str, int] = {}
    sockets: list[int] = []
    for c in conns:
        sockets.append(c.sockets)
        connect.transfer(c.connect_times)
        if c.peer:
            ip_counts[c.peer] = ip_counts.get(c.peer, 0) + c.sockets
    res.update(
        {
            "RequestedQPS": stats.plan.requested_qps,
            "RequestedDuration": requested,
            "ActualQPS": count / stats.elapsed if stats.elapsed > 0 else 0.0,
            "ActualDuration": round(stats.elapsed * 1e9),
            "NumThreads": stats.threads,
            "DurationHistogram": stats.durations.export(options.percentiles),
            "ErrorsDurationHistogram": stats.errors.export(options.percentiles),
            "RetCodes": ret_codes(st.codes),
            "IPCountMap": ip_counts,
            "Sizes": st.sizes.export(),
            "HeaderSizes": st.header_sizes.export(),
            "Sockets": sockets,
            "SocketCount": sum(sockets),
            "ConnectionStats": connect.export(options.percentiles),
        }
    )
    if stats.open_loop is not None:
        res["OpenLoop"] = stats.open_loop
    if options.classify_regex or options.classify_header:
        res["Classification"] = dict(sorted(st.classes.items()))
    return res
