"""A replica's capacity: a fixed pool of workers and a queue in front of it, like a real pod.

The annotation ``chaosmesh.io/capacity: "workers=6,service=20ms"`` gives a replica ``workers``
workers; every request holds one for ``service`` (then gets its normal answer), so one replica
completes at most ``workers / service`` requests per second. Requests beyond that wait, first
come first served, in the replica's own queue — what a thread-pool server (Tomcat, gunicorn
with threads, a Go server behind a semaphore) does: it accepts every connection and lets
requests wait for a worker. So under overload latency grows with the queue, without bound but
the client's timeout, as in a saturated pod. Optional keys:

- ``jitter=20%``: each service time is drawn uniformly from ``service`` +/- 20 % (same mean),
  which softens the knee the way varied real requests do;
- ``queue=N``: at most N requests wait; the next is answered 503 at once (a server with a
  bounded accept queue). Absent: the queue is unbounded.

A request whose client hangs up while it waits or is being served is dropped (its worker
freed), as a sidecar's reset on a timed-out request ends the work on a real pod only in the
best of servers — here always, so an overload test does not leave minutes of work behind.

Each :class:`Limiter` is one replica's pool and queue; several replicas in one process each
get their own. Runs in every echo/proxy replica, so like ``_http`` it imports no typing,
dataclasses or re at run time (parsing is plain string work).
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque

TYPE_CHECKING = False  # no typing at run time: see _http's docstring
if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from ._http import Handler, Request, Response

CAPACITY_ANNOTATION = "chaosmesh.io/capacity"
SYNTAX = "workers=N,service=DURATION[,jitter=P%][,queue=N]"
MAX_WORKERS = 10000
MAX_SERVICE = 60.0  # seconds
# How long one queued request may wait for a worker before it gives up on its own (the
# client's timeout normally ends the wait first).
MAX_QUEUE_WAIT = 3600.0
_UNITS = (("ms", 0.001), ("us", 0.000001), ("s", 1.0), ("m", 60.0))


class Capacity:
    """What the annotation says: ``workers``, ``service`` (s), ``jitter`` (0..1), ``queue``."""

    __slots__ = ("jitter", "queue", "service", "workers")

    def __init__(
        self, workers: int, service: float, jitter: float = 0.0, queue: int | None = None
    ) -> None:
        self.workers = workers
        self.service = service
        self.jitter = jitter
        self.queue = queue

    @property
    def max_rate(self) -> float:
        """Requests per second one replica completes when every worker is busy."""
        return self.workers / self.service

    def text(self) -> str:
        """The canonical annotation text (what the replica's command line carries)."""
        parts = [f"workers={self.workers}", f"service={_format_seconds(self.service)}"]
        if self.jitter:
            parts.append(f"jitter={self.jitter * 100:g}%")
        if self.queue is not None:
            parts.append(f"queue={self.queue}")
        return ",".join(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Capacity) and self.text() == other.text()

    def __repr__(self) -> str:
        return f"Capacity({self.text()!r})"


def _format_seconds(seconds: float) -> str:
    ms = seconds * 1000.0
    return f"{ms:g}ms" if ms < 1000 else f"{seconds:g}s"


def _seconds(text: str, where: str) -> float:
    bad = f"{where}: service: expected a duration such as 20ms or 0.5s, got {text!r}"
    unit = next(((u, scale) for u, scale in _UNITS if text.endswith(u)), None)
    if unit is None:
        raise ValueError(bad)
    try:
        value = float(text[: -len(unit[0])]) * unit[1]
    except ValueError:
        raise ValueError(bad) from None
    if not 0 < value <= MAX_SERVICE:  # also rejects nan
        raise ValueError(
            f"{where}: service: must be > 0 and at most {MAX_SERVICE:g}s, got {text!r}"
        )
    return value


def _whole(text: str, key: str, where: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{where}: {key}: expected a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{where}: {key}: must be between {low} and {high}, got {value}")
    return value


def _fraction(text: str, where: str) -> float:
    raw = text[:-1] if text.endswith("%") else text
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{where}: jitter: expected a percentage such as 20%, got {text!r}"
        ) from None
    if text.endswith("%"):
        value /= 100.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: jitter: must be between 0% and 100%, got {text!r}")
    return value


def parse_capacity(text: str, where: str = CAPACITY_ANNOTATION) -> Capacity:
    """``"workers=6,service=20ms"`` -> :class:`Capacity`; ``ValueError`` starting with ``where``.

    ``where`` names the object and annotation, e.g. ``Deployment default/web: annotation
    chaosmesh.io/capacity``.
    """
    fields: dict[str, str] = {}
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key or not value:
            raise ValueError(f"{where}: expected {SYNTAX}, got {text!r} (bad item {item!r})")
        if key not in ("workers", "service", "jitter", "queue"):
            raise ValueError(f"{where}: unknown key {key!r} in {text!r}; expected {SYNTAX}")
        if key in fields:
            raise ValueError(f"{where}: {key} given twice in {text!r}")
        fields[key] = value
    missing = [key for key in ("workers", "service") if key not in fields]
    if missing:
        raise ValueError(f"{where}: {' and '.join(missing)} missing in {text!r}; expected {SYNTAX}")
    return Capacity(
        workers=_whole(fields["workers"], "workers", where, 1, MAX_WORKERS),
        service=_seconds(fields["service"].lower(), where),
        jitter=_fraction(fields["jitter"], where) if "jitter" in fields else 0.0,
        queue=_whole(fields["queue"], "queue", where, 0, 1_000_000) if "queue" in fields else None,
    )


class _Waiter:
    """One queued request: a file descriptor that turns readable when it gets a worker."""

    __slots__ = ("read_fd", "write_fd")

    def __init__(self) -> None:
        # An eventfd is one descriptor; a pipe where there is none. No polling either way.
        eventfd = getattr(os, "eventfd", None)
        if eventfd is not None:
            self.read_fd = self.write_fd = eventfd(0, os.EFD_CLOEXEC)
        else:
            self.read_fd, self.write_fd = os.pipe()

    def wake(self) -> None:
        os.write(self.write_fd, (1).to_bytes(8, "little"))

    def close(self) -> None:
        os.close(self.read_fd)
        if self.write_fd != self.read_fd:
            os.close(self.write_fd)


class QueueFull(Exception):
    """The bounded queue (``queue=N``) is full: answer 503 at once."""


class QueueTimeout(Exception):
    """No worker came within :data:`MAX_QUEUE_WAIT`."""


class Limiter:
    """One replica's workers and FIFO queue. Thread-safe; a freed worker goes straight to the
    oldest waiting request, so nobody overtakes the queue."""

    def __init__(self, capacity: Capacity, rng: random.Random | None = None) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._free = capacity.workers
        self._waiting: deque[_Waiter] = deque()
        self._rng = rng

    @property
    def queued(self) -> int:
        return len(self._waiting)

    @property
    def busy(self) -> int:
        return self.capacity.workers - self._free

    def service_time(self) -> float:
        c = self.capacity
        if not c.jitter:
            return c.service
        if self._rng is None:
            import random  # only replicas with jitter pay for it

            self._rng = random.Random()
        return c.service * (1.0 + c.jitter * (2.0 * self._rng.random() - 1.0))

    def acquire(self, wait: Callable[[int], object]) -> None:
        """Take a worker, waiting in line if none is free.

        ``wait(fd)`` blocks until ``fd`` is readable (returns true) or gives up (returns
        false: :class:`QueueTimeout`), and may raise (the client hung up): the request then
        leaves the line, and a worker handed to it meanwhile is passed on. Raises
        :class:`QueueFull` when a bounded queue has no room.
        """
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return
            limit = self.capacity.queue
            if limit is not None and len(self._waiting) >= limit:
                raise QueueFull
            waiter = _Waiter()
            self._waiting.append(waiter)
        try:
            if not wait(waiter.read_fd):
                raise QueueTimeout
        except BaseException:
            with self._lock:
                still_waiting = waiter in self._waiting
                if still_waiting:
                    self._waiting.remove(waiter)
            if not still_waiting:
                self.release()  # a worker came just as the client left: pass it on
            raise
        finally:
            waiter.close()

    def release(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().wake()  # the worker changes hands; _free unchanged
            else:
                self._free += 1


def _wait_readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(int(MAX_QUEUE_WAIT * 1000)))


class Limited:
    """An ``_http`` handler behind a :class:`Limiter`: queue, hold a worker, then answer.

    Answers carry ``x-chaosmesh-queued-ms``: how long the request waited for a worker.
    """

    def __init__(self, handler: Handler, limiter: Limiter) -> None:
        self.handler = handler
        self.limiter = limiter

    def __call__(self, request: Request) -> Response:
        from ._http import text_response

        arrived = time.monotonic()
        try:
            # Request.wait raises ClientGone when the client hangs up (keep-alive only).
            self.limiter.acquire(lambda fd: request.wait(MAX_QUEUE_WAIT, readable=fd))
        except (QueueFull, QueueTimeout) as exc:
            reason = "queue full" if isinstance(exc, QueueFull) else "no worker in time"
            return text_response(503, f"capacity: {reason}\n", [("x-chaosmesh-queued-ms", "0")])
        try:
            queued = time.monotonic() - arrived
            request.wait(self.limiter.service_time())
            response = self.handler(request)
        finally:
            self.limiter.release()
        response.headers.append(("x-chaosmesh-queued-ms", f"{queued * 1000:.1f}"))
        return response


def limit_handler(handler: Handler, capacity: Capacity) -> Handler:
    """``handler`` with its own pool of workers and queue (one per replica)."""
    return Limited(handler, Limiter(capacity))


def limit_wsgi(app: Callable[..., object], capacity: Capacity) -> Callable[..., object]:
    """A WSGI app behind its own :class:`Limiter` (the httpbin workload). WSGI gives no view
    of the client's socket, so a request whose client left still runs to the end."""
    limiter = Limiter(capacity)

    def limited(environ: dict[str, object], start_response: Callable[..., object]) -> object:
        arrived = time.monotonic()
        try:
            limiter.acquire(_wait_readable)
        except (QueueFull, QueueTimeout):
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "text/plain"), ("x-chaosmesh-queued-ms", "0")],
            )
            return [b"capacity: no worker free\n"]
        queued = f"{(time.monotonic() - arrived) * 1000:.1f}"
        try:
            time.sleep(limiter.service_time())

            def start(status: str, headers: list[tuple[str, str]], *rest: object) -> object:
                return start_response(status, [*headers, ("x-chaosmesh-queued-ms", queued)], *rest)

            # The app's body is produced here, inside the worker, as a real server's would be.
            result = app(environ, start)
            try:
                return list(result)  # type: ignore[call-overload]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            limiter.release()

    return limited
