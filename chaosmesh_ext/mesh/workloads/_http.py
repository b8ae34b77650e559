"""A small threaded HTTP/1.1 server core shared by the echo and proxy workloads.

Why not http.server: BaseHTTPRequestHandler writes the status line and the body separately,
and with Nagle plus the peer's delayed ACK every response then costs ~27 ms. Here every
response leaves in one write on a TCP_NODELAY socket. Why not asyncio: memory. The mesh runs
a process per replica host (and per replica of its own), and asyncio's imports (ssl,
logging, concurrent.futures, inspect, typing) cost ~10 MB of RSS in each; this core needs
only ``socket``, ``select`` and ``threading`` (a replica idles at ~12 MB instead of ~27 MB;
benchmarks/bench_workloads.py).
So this module, and the echo and proxy built on it, must not import typing, dataclasses,
logging, email or asyncio at run time.

One thread per connection, blocking sockets. The core speaks enough HTTP/1.1 for a sidecar
and for curl: keep-alive (1.1 default, 1.0 on request), Content-Length and chunked request
bodies, ``Expect: 100-continue``, HEAD, and pipelined requests answered in order. While a
keep-alive request is being answered, :meth:`Request.wait` notices the client hanging up
(POLLRDHUP) so the work for it stops, as nginx drops an upstream request whose client left.
"""

from __future__ import annotations

import select
import signal
import socket
import sys
import threading
import time
from collections import deque

from ..ports import reusable_listener

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~2 MB)
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any, TextIO

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
# Long on purpose: a sidecar keeps upstream connections idle for up to an hour, and a server
# that closes first races the sidecar's next request on that connection (503 "UC").
IDLE_TIMEOUT = 3600.0
# Once a request has started arriving, the rest of it must follow promptly.
REQUEST_TIMEOUT = 60.0
# A thread with no request to serve for this long ends (``Workers``).
WORKER_IDLE_S = 10.0
# Threads started at once for requests that find every thread busy; past that, a request
# waits this long for a thread to free up before one is started for it (``Workers``).
EAGER_THREADS = 4
SPAWN_DELAY_S = 0.002
# How often parked connections are checked against IDLE_TIMEOUT.
PARKING_SWEEP_S = 60.0
# Bytes asked of the kernel per read: a small read first, large ones once the message has
# filled a small one. CPython's recv(n) allocates n bytes before the call (and shrinks them
# after), so each thread reading at once holds n bytes of malloc's memory: threads of a
# burst all reading 64 KiB pushed the allocator's arenas to threads x 64 KiB, and the pages
# stayed (freed in the middle of an arena, not returned). A request head fits in a few kB.
READ_SIZE = 4096
READ_SIZE_LARGE = 65536

# Linux only; elsewhere a client's hang-up is noticed only when its answer is written.
_POLLRDHUP = getattr(select, "POLLRDHUP", 0)
_HANGUP = _POLLRDHUP | select.POLLHUP | select.POLLERR
# A parked connection wakes on its next request or its end, once (then it is a worker's).
_PARK_EVENTS = (
    select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLONESHOT if hasattr(select, "epoll") else 0
)

# Headers that describe one connection, not the message (RFC 9110 7.6.1); never relayed.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    }
)

# http.HTTPStatus's phrases for the codes a workload sends or relays (importing http.HTTPStatus
# would pull in enum machinery for one lookup).
_REASONS = {
    100: "Continue",
    101: "Switching Protocols",
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-Authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    417: "Expectation Failed",
    418: "I'm a Teapot",
    421: "Misdirected Request",
    422: "Unprocessable Entity",
    423: "Locked",
    424: "Failed Dependency",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates",
    507: "Insufficient Storage",
    508: "Loop Detected",
    510: "Not Extended",
    511: "Network Authentication Required",
}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def log_time(now: float) -> str:
    """A log line's time as a container runtime records it: RFC 3339 in UTC, to the
    microsecond (``kubectl logs --timestamps`` shows it; ``pods.logs`` reads it back)."""
    whole = int(now)
    micros = min(int((now - whole) * 1_000_000), 999_999)  # floor: never the next second
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


# The log of each replica a replica host serves (``host``), by the replica's name; a replica
# running as its own process writes to stderr, which is its log file.
LOGS: dict[str, TextIO] = {}


def log_of(name: str) -> TextIO:
    """Where replica ``name`` writes its log."""
    return LOGS.get(name, sys.stderr)


def say(name: str, message: str) -> None:
    """One line in the replica's log, starting with its time."""
    stream = log_of(name)
    stream.write(f"{log_time(time.time())} {name}: {message}\n")
    stream.flush()


class HTTPError(Exception):
    """A request this server refuses; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class IncompleteRead(ConnectionError):
    """The peer closed before sending all that was expected; ``partial`` is what came."""

    def __init__(self, partial: bytes) -> None:
        super().__init__(f"connection closed after {len(partial)} bytes")
        self.partial = partial


class LimitOverrun(Exception):
    """A delimiter did not come within the allowed number of bytes."""


class ClientGone(Exception):
    """The client hung up while its answer was being made: nobody is left to answer."""


class BufferedSocket:
    """A blocking socket with a read buffer (what asyncio's StreamReader gave).

    ``deadline`` (a ``time.monotonic()`` value), when set, bounds every read: past it a read
    raises ``TimeoutError``. Otherwise the socket's own timeout applies per read.
    """

    __slots__ = ("buffer", "deadline", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.deadline: float | None = None

    def _fill(self) -> None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(left)
        data = self.sock.recv(READ_SIZE if len(self.buffer) < READ_SIZE else READ_SIZE_LARGE)
        if not data:
            raise IncompleteRead(bytes(self.buffer))
        self.buffer += data

    def _take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_until(self, separator: bytes, limit: int) -> bytes:
        """Bytes up to and including ``separator``; ``LimitOverrun`` past ``limit`` bytes."""
        start = 0
        while True:
            found = self.buffer.find(separator, start)
            if found >= 0:
                return self._take(found + len(separator))
            if len(self.buffer) > limit:
                raise LimitOverrun(f"no {separator!r} within {limit} bytes")
            start = max(0, len(self.buffer) - len(separator) + 1)
            self._fill()

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        return self._take(size)

    def read_to_eof(self, limit: int) -> bytes:
        while True:
            try:
                self._fill()
            except IncompleteRead:
                return self._take(len(self.buffer))
            if len(self.buffer) > limit:
                raise HTTPError(502, "body too large")

    def idle_and_open(self) -> bool:
        """True when nothing is pending and the peer has not closed: safe to reuse."""
        if self.buffer:
            return False
        poller = select.poll()  # not select.select: a busy proxy may hold fds above 1023
        try:
            poller.register(self.sock, select.POLLIN)
            events = poller.poll(0)
        except (OSError, ValueError):
            return False
        return not events  # an idle connection that turns readable was closed (or is broken)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Request:
    __slots__ = ("_watch_fd", "body", "headers", "method", "peer", "target", "version")

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        peer: str = "",
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.peer = peer
        # The client's socket while a hang-up means the answer is unwanted, else None.
        self._watch_fd: int | None = None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    def header_tokens(self, name: str) -> set[str]:
        """Comma-separated tokens of every ``name`` header, lower-cased."""
        lname = name.lower()
        return {
            token.strip().lower()
            for key, value in self.headers
            if key.lower() == lname
            for token in value.split(",")
            if token.strip()
        }

    def wait(self, seconds: float, readable: int | None = None) -> bool:
        """Wait ``seconds``, or until file descriptor ``readable`` has data (then True).

        Raises :class:`ClientGone` as soon as the client hangs up (keep-alive requests only:
        a client without keep-alive may half-close right after its request).
        """
        poller = select.poll()
        watched = self._watch_fd if _POLLRDHUP else None
        if watched is not None:
            poller.register(watched, _HANGUP)
        if readable is not None:
            poller.register(readable, select.POLLIN)
        if watched is None and readable is None:
            time.sleep(max(seconds, 0.0))
            return False
        deadline = time.monotonic() + max(seconds, 0.0)
        while True:
            left = deadline - time.monotonic()
            events = poller.poll(max(0, int(left * 1000) + 1) if left > 0 else 0)
            for fd, _ in events:
                if fd == watched:
                    raise ClientGone
            if events:
                return True
            if left <= 0:
                return False


class Response:
    __slots__ = ("body", "headers", "reason", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        reason: str | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []
        self.reason = reason


if TYPE_CHECKING:
    Handler = Callable[[Request], Response]


def text_response(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(
        status, text.encode(), [("Content-Type", "text/plain; charset=utf-8"), *(headers or [])]
    )


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    cached = _date_cache
    if cached[0] == now:
        return cached[1]
    t = time.gmtime(now)
    text = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )
    _date_cache = (now, text)  # one tuple assignment: threads see the old or the new pair
    return text


def _reason(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    """Request line and headers of a request head (without the final blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HTTPError(400, f"malformed request line {lines[0][:100]!r}")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise HTTPError(400, f"malformed header line {line[:100]!r}")
        headers.append((name, value.strip()))
    return method, target, version, headers


def read_chunked(reader: BufferedSocket, limit: int = MAX_BODY) -> bytes:
    """A chunked body (trailers are read and dropped)."""
    body = bytearray()
    while True:
        line = reader.read_until(b"\r\n", MAX_HEAD)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise HTTPError(400, "malformed chunk size") from None
        if size == 0:
            while reader.read_until(b"\r\n", MAX_HEAD) != b"\r\n":
                pass
            return bytes(body)
        if len(body) + size > limit:
            raise HTTPError(413, "body too large")
        body += reader.read_exactly(size)
        if reader.read_exactly(2) != b"\r\n":
            raise HTTPError(400, "malformed chunk")


def _read_request(conn: BufferedSocket, head: bytes, peer: str) -> Request:
    method, target, version, headers = parse_head(head.lstrip(b"\r\n")[:-4])
    request = Request(method, target, version, headers, peer=peer)
    encodings = request.header_tokens("transfer-encoding")
    length = request.header("content-length")
    if encodings and length is not None:
        raise HTTPError(400, "both Transfer-Encoding and Content-Length")
    if (request.header("expect") or "").lower() == "100-continue" and (encodings or length):
        conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        if encodings:
            if "chunked" not in encodings:
                raise HTTPError(501, f"unsupported Transfer-Encoding {sorted(encodings)}")
            request.body = read_chunked(conn)
        elif length is not None:
            if not length.isdigit():
                raise HTTPError(400, f"bad Content-Length {length!r}")
            if int(length) > MAX_BODY:
                raise HTTPError(413, "body too large")
            request.body = conn.read_exactly(int(length))
    except LimitOverrun:
        raise HTTPError(400, "malformed chunked body") from None
    return request


def _keep_alive(request: Request) -> bool:
    tokens = request.header_tokens("connection")
    if request.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def render(response: Response, head_only: bool, keep_alive: bool, http10_keep_alive: bool) -> bytes:
    """The whole response as one buffer: one write, no Nagle stall between head and body."""
    lines = [f"HTTP/1.1 {response.status} {response.reason or _reason(response.status)}"]
    length: str | None = None
    for name, value in response.headers:
        lname = name.lower()
        if lname == "content-length":
            # Only a HEAD answer may state a length other than its (empty) body's.
            length = value if head_only else None
        elif lname not in HOP_BY_HOP:
            lines.append(f"{name}: {value}")
    lines.append(f"Date: {_http_date()}")
    if response.status not in (204, 304) and response.status >= 200:
        lines.append(f"Content-Length: {length if length is not None else len(response.body)}")
    if not keep_alive:
        lines.append("Connection: close")
    elif http10_keep_alive:
        lines.append("Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if head_only or response.status in (204, 304):
        return head
    return head + response.body


def set_nodelay(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


def _answer(handler: Handler, request: Request, name: str) -> Response:
    try:
        return handler(request)
    except ClientGone:
        raise
    except Exception:
        import traceback  # only on a bug: not worth its memory in every replica

        say(name, f"handler failed for {request.method} {request.target}")
        traceback.print_exc(file=log_of(name))
        return text_response(500, "internal error in the workload\n")


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class stop_signals_blocked:  # lower case: used as a ``with`` statement, like a function
    """SIGTERM and SIGINT blocked in this thread within ``with``, so every thread started
    inside never takes them (a thread inherits its creator's mask). The kernel hands a
    process's signal to any thread not blocking it, but only the main thread runs Python's
    handler, and only once its own wait ends: a replica host whose signal went to a worker
    thread would sleep on in ``accept`` instead of stopping. (A class, not contextlib: this
    module keeps its imports few.)"""

    def __enter__(self) -> None:
        self.old = None
        if hasattr(signal, "pthread_sigmask"):
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)

    def __exit__(self, *exc: object) -> None:
        if self.old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


def start_thread(target: Callable[..., None], *args: object, name: str | None = None) -> None:
    """Start a daemon thread that never takes SIGTERM or SIGINT (``stop_signals_blocked``);
    threads it starts inherit that."""
    with stop_signals_blocked():
        threading.Thread(target=target, args=args, name=name, daemon=True).start()


class Workers:
    """Threads that run jobs: a thread that found nothing to do for ``idle_seconds`` ends, so
    there are about as many threads as jobs running at once lately (requests in flight),
    however many connections are open.

    A job that finds every thread busy starts a thread of its own at once while there are
    fewer than ``eager`` threads; past that it waits for a thread to free up, and after
    ``spawn_delay`` (see :meth:`due`) it starts one. A burst of quick requests after a stall
    (hundreds at once) is then served by the threads there are, while a slow request (a
    delay, a capacity queue, an upstream call) still has a thread of its own within
    milliseconds, so a job never waits for another to end. The thread that went idle last
    gets the next job (a stack): under a steady trickle the same few threads serve it, and the
    ones a burst added run out their idle time.
    """

    def __init__(
        self,
        idle_seconds: float = WORKER_IDLE_S,
        spawn_delay: float = SPAWN_DELAY_S,
        eager: int = EAGER_THREADS,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.spawn_delay = spawn_delay
        self.eager = eager
        self._lock = threading.Lock()
        # Idle threads, each as [job, lock held until a job is handed to it].
        self._idle: list[list[Any]] = []
        self._pending: deque[tuple[float, Callable[[], None]]] = deque()  # (since, job)
        self.threads = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._hand(job)
                return
            if self.threads >= self.eager:
                self._pending.append((time.monotonic(), job))
                return
            self.threads += 1
        self._start(job)

    def due(self) -> float | None:
        """Start a thread for each job that waited ``spawn_delay``; the seconds until the
        next one is due (None: no job waits). Called by whoever submits, now and then."""
        now = time.monotonic()
        starting = []
        with self._lock:
            while self._pending and now - self._pending[0][0] >= self.spawn_delay:
                starting.append(self._pending.popleft()[1])
            self.threads += len(starting)
            wait = self._pending[0][0] + self.spawn_delay - now if self._pending else None
        for job in starting:
            self._start(job)
        return wait

    def _hand(self, job: Callable[[], None]) -> None:
        """Give ``job`` to the thread that went idle last (hold ``_lock``)."""
        waiter = self._idle.pop()
        waiter[0] = job
        waiter[1].release()

    def _start(self, job: Callable[[], None]) -> None:
        try:
            start_thread(self._work, job)
        except RuntimeError:  # no thread to be had: the job runs here (its caller waits)
            with self._lock:
                self.threads -= 1
            job()

    def _work(self, job: Callable[[], None]) -> None:
        handed = threading.Lock()
        handed.acquire()
        waiter: list[Any] = [None, handed]
        while True:
            try:
                job()
            except Exception:  # a bug: said, and this thread serves on
                import traceback  # only on a bug: not worth its memory in every replica

                traceback.print_exc()
            job = None  # type: ignore[assignment]  # nothing of the last job kept alive
            with self._lock:
                if self._pending:  # the longest waiting first
                    job = self._pending.popleft()[1]
                    continue
                self._idle.append(waiter)
            if not handed.acquire(timeout=self.idle_seconds):
                with self._lock:
                    if waiter in self._idle:  # nothing came: this thread ends
                        self._idle.remove(waiter)
                        self.threads -= 1
                        return
                handed.acquire()  # a job was handed over just as the wait ran out
            job, waiter[0] = waiter[0], None


class Parking:
    """Keep-alive connections between requests, watched by one thread instead of one each.

    A connection is parked (``park``) once its pending requests are answered; when its next
    request (or its close) arrives, one thread of ``workers`` serves it. Linux's epoll in
    one-shot mode: an event disarms the connection, so exactly one worker gets it, and the
    worker re-arms it by parking it again. A connection parked for ``IDLE_TIMEOUT`` is closed.
    """

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self._epoll = select.epoll()
        self._parked: dict[int, tuple[Connection, float]] = {}
        self._lock = threading.Lock()
        start_thread(self._watch, name="parking")

    def __len__(self) -> int:
        return len(self._parked)

    def park(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        if fd < 0:
            return  # closed meanwhile (its replica stopped)
        with self._lock:
            self._parked[fd] = (conn, time.monotonic())
        try:
            try:
                self._epoll.modify(fd, _PARK_EVENTS)
            except FileNotFoundError:
                self._epoll.register(fd, _PARK_EVENTS)  # its first park
        except (OSError, ValueError):
            with self._lock:
                self._parked.pop(fd, None)
            conn.close()

    def _watch(self) -> None:
        swept = time.monotonic()
        timeout = PARKING_SWEEP_S
        while True:
            try:
                events = self._epoll.poll(timeout)
            except InterruptedError:
                continue
            for fd, _ in events:
                with self._lock:
                    found = self._parked.pop(fd, None)
                if found is not None:
                    self.workers.submit(found[0].serve)
            # Requests that found every worker busy get threads of their own once due.
            wait = self.workers.due()
            timeout = PARKING_SWEEP_S if wait is None else max(wait, 0.0005)
            now = time.monotonic()
            if now - swept >= PARKING_SWEEP_S:
                swept = now
                self._expire(now - IDLE_TIMEOUT)

    def _expire(self, before: float) -> None:
        """Close the connections parked since before ``before`` (the idle timeout)."""
        with self._lock:
            stale = [fd for fd, (_, since) in self._parked.items() if since < before]
            expired = [self._parked.pop(fd)[0] for fd in stale]
        for conn in expired:
            try:
                self._epoll.unregister(conn.sock.fileno())
            except (OSError, ValueError):
                pass
            conn.close()


class Connection:
    """One client connection: its requests answered in order by whichever worker has it."""

    __slots__ = ("handler", "name", "on_close", "parking", "peer", "reader", "sock")

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        name: str,
        parking: Parking | None,
        on_close: Callable[[socket.socket], None] | None = None,
    ) -> None:
        set_nodelay(sock)
        try:
            self.peer = str(sock.getpeername()[0])
        except OSError:
            self.peer = ""
        self.sock = sock
        self.reader = BufferedSocket(sock)
        self.handler = handler
        self.name = name
        self.parking = parking
        self.on_close = on_close

    def serve(self) -> None:
        """Answer what the client has sent; then park the connection (or close it)."""
        keep = False
        try:
            keep = self._answer_pending()
        except OSError:
            pass
        finally:
            if keep and self.parking is not None:
                self.parking.park(self)
            else:
                self.close()

    def serve_to_end(self) -> None:
        """Answer its requests until the client closes, holding this thread all along (where
        there is no parking)."""
        try:
            while self._answer_pending():
                self.sock.settimeout(IDLE_TIMEOUT)
                self.reader._fill()  # the next request's first bytes (or its end)
        except (OSError, ConnectionError):
            pass
        self.close()

    def close(self) -> None:
        self.reader.close()
        if self.on_close is not None:
            self.on_close(self.sock)

    def _answer_pending(self) -> bool:
        """Answer every request that has arrived (pipelined ones in order); True when the
        connection stays open for more, False when it is over."""
        conn, sock = self.reader, self.sock
        while True:
            try:
                # Called when data (or the end) has arrived: the head must follow promptly.
                sock.settimeout(REQUEST_TIMEOUT)
                try:
                    head = conn.read_until(b"\r\n\r\n", MAX_HEAD)
                except (ConnectionError, TimeoutError):
                    return False  # the client went away between requests: end of keep-alive
                except LimitOverrun:
                    raise HTTPError(431, "request head too large") from None
                request = _read_request(conn, head, self.peer)
            except HTTPError as exc:
                sock.sendall(render(text_response(exc.status, f"{exc}\n"), False, False, False))
                return False
            except (ConnectionError, TimeoutError):
                return False  # a request cut off half way: nobody is left to answer
            keep_alive = _keep_alive(request)
            # Without keep-alive a client may half-close right after its request: not a hang-up.
            request._watch_fd = sock.fileno() if keep_alive else None
            try:
                response = _answer(self.handler, request, self.name)
            except ClientGone:
                return False
            sock.settimeout(REQUEST_TIMEOUT)
            sock.sendall(
                render(
                    response,
                    request.method == "HEAD",
                    keep_alive,
                    keep_alive and request.version == "HTTP/1.0",
                )
            )
            if not keep_alive:
                return False
            # A pipelined request (or the next one, already here) is answered by this thread
            # rather than handed over.
            if not conn.buffer and not _readable(sock):
                return True


def _readable(sock: socket.socket) -> bool:
    poller = select.poll()
    try:
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return False


class Server:
    """Where connections go to be served: one per process, shared by its replicas.

    On Linux idle keep-alive connections are parked without a thread (``Parking``) and a
    thread serves a connection only while it has a request, so the threads follow the
    requests in flight: a sidecar keeps hundreds of upstream connections open after a burst,
    and a thread each (stack, per-thread malloc arena) stayed with them for the hour they
    idle. Elsewhere each connection has its thread, as before.
    """

    def __init__(self) -> None:
        self.workers = Workers()
        self.parking = Parking(self.workers) if hasattr(select, "epoll") else None

    def adopt(
        self,
        sock: socket.socket,
        handler: Handler,
        name: str,
        on_close: Callable[[socket.socket], None] | None = None,
    ) -> None:
        """Serve the requests of connection ``sock`` until it closes (then ``on_close``)."""
        try:
            conn = Connection(sock, handler, name, self.parking, on_close)
        except OSError:
            sock.close()
            if on_close is not None:
                on_close(sock)
            return
        if self.parking is None:
            start_thread(conn.serve_to_end)
        else:
            self.parking.park(conn)  # served once its first request arrives


_server: Server | None = None
_server_lock = threading.Lock()


def server() -> Server:
    """This process's :class:`Server` (started on first use)."""
    global _server
    with _server_lock:
        if _server is None:
            _server = Server()
        return _server


def serve_connection(sock: socket.socket, handler: Handler, name: str = "workload") -> None:
    """Answer the requests of one client connection, in order, until it closes (in this
    thread)."""
    Connection(sock, handler, name, None).serve_to_end()


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT to leave the accept loop."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run(handler: Handler, host: str, port: int, name: str) -> None:
    """Serve until SIGTERM or SIGINT; returns promptly even with requests in flight.

    Connection threads are daemons: returning from here (and exiting) drops what is in
    flight, as a pod's container does on SIGTERM without a preStop hook.
    """
    # The daemon keeps the port reserved (mesh.ports) until this binds it too.
    listener = reusable_listener(host, port)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        say(name, f"listening on {host}:{port}")
        connections = server()
        while True:
            sock, _ = listener.accept()
            connections.adopt(sock, handler, name)
    except _Stop:
        say(name, "stopping")
    finally:
        listener.close()
