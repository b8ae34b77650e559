"""The proxy workload: a reverse proxy, such as an nginx in front of a tomcat.

Every request is forwarded to ``chaosmesh.io/upstream`` through the mesh, as a pod's
traffic goes through its sidecar: the TCP connection goes to ``Sidecar.connect_address`` (the
outbound listener for the upstream's port) with ``Host`` set to the upstream as a client would
write it, plus the sidecar's identity headers. So the upstream's VirtualService (delay, abort)
applies behind the proxy and the caller's (timeout, retries) in front of it.

Like nginx: method, path, query, body and end-to-end headers are kept; the upstream's
status, headers and body come back; idle upstream connections are kept for reuse; no answer
within the proxy timeout (nginx's proxy_read_timeout, 60 s by default; here for the whole
exchange) -> 504; an upstream that cannot be reached or breaks the exchange -> 502; a
caller that hangs up while the proxy waits for the upstream's answer -> the upstream request
is dropped (its connection closed). Each caller connection has its own thread (``_http``).
"""

from __future__ import annotations

import socket
import threading
import time

from chaosmesh_ext._sidecar import (
    SOURCE_LABEL_HEADER_PREFIX,
    SOURCE_NAMESPACE_HEADER,
    SOURCE_WORKLOAD_HEADER,
    Sidecar,
)

from ._http import (
    HOP_BY_HOP,
    MAX_BODY,
    MAX_HEAD,
    BufferedSocket,
    ClientGone,
    HTTPError,
    IncompleteRead,
    LimitOverrun,
    Request,
    Response,
    read_chunked,
    set_nodelay,
    text_response,
)
from .upstream import Upstream

TYPE_CHECKING = False  # no typing at run time: see _http's docstring
if TYPE_CHECKING:
    from ._http import Handler

MAX_IDLE = 64
# Headers the proxy sets itself, so a caller's copy must not be relayed alongside. Expect is
# dropped too: the proxy already holds the whole body and sends it at once.
_REPLACED = frozenset(
    {"host", "content-length", "expect", SOURCE_WORKLOAD_HEADER, SOURCE_NAMESPACE_HEADER}
)
# Response headers the server core writes itself.
_OWN_RESPONSE = frozenset({"content-length", "date"})


class UpstreamAnswer:
    __slots__ = ("body", "headers", "reason", "reusable", "status")

    def __init__(
        self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, reusable: bool
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.reusable = reusable


class _StaleConnection(Exception):
    """A reused keep-alive connection closed before answering: safe to retry on a new one."""


def _connection_tokens(headers: list[tuple[str, str]]) -> set[str]:
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }


def _end_to_end(headers: list[tuple[str, str]], also_drop: frozenset[str]) -> list[tuple[str, str]]:
    listed = _connection_tokens(headers)
    return [
        (name, value)
        for name, value in headers
        if (lname := name.lower()) not in HOP_BY_HOP
        and lname not in listed
        and lname not in also_drop
    ]


def read_answer(reader: BufferedSocket, head_only: bool) -> UpstreamAnswer:
    """One HTTP/1.x response, skipping interim 1xx answers."""
    while True:
        try:
            head = reader.read_until(b"\r\n\r\n", MAX_HEAD)
        except LimitOverrun:
            raise HTTPError(502, "upstream response head too large") from None
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise HTTPError(502, f"malformed upstream status line {lines[0][:100]!r}")
        status = int(code)
        if not 100 <= status < 200:
            break
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise HTTPError(502, f"malformed upstream header {line[:100]!r}")
        headers.append((name.strip(), value.strip()))
    tokens = _connection_tokens(headers)
    reusable = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    lower = {name.lower(): value for name, value in headers}
    if head_only or status in (204, 304):
        body = b""
    elif "chunked" in lower.get("transfer-encoding", "").lower():
        try:
            body = read_chunked(reader)
        except LimitOverrun:
            raise HTTPError(502, "malformed upstream chunked body") from None
    elif lower.get("content-length", "").isdigit():
        body = reader.read_exactly(int(lower["content-length"]))
    else:
        body = reader.read_to_eof(MAX_BODY)  # delimited by the upstream closing the connection
        reusable = False
    return UpstreamAnswer(status, reason, headers, body, reusable)


class Proxy:
    def __init__(self, upstream: Upstream, timeout: float, sidecar: Sidecar, name: str) -> None:
        self.upstream = upstream
        self.timeout = timeout
        self.sidecar = sidecar
        self.name = name
        self.address = sidecar.connect_address(upstream.host, upstream.port)
        self.idle: list[BufferedSocket] = []
        self.lock = threading.Lock()  # the idle pool is shared by the callers' threads
        self.identity = list(sidecar.identity_headers().items())

    def _take_idle(self) -> BufferedSocket | None:
        with self.lock:
            while self.idle:
                conn = self.idle.pop()
                if conn.idle_and_open():
                    return conn
                conn.close()
        return None

    def _give_back(self, conn: BufferedSocket) -> None:
        conn.deadline = None
        with self.lock:
            if len(self.idle) < MAX_IDLE:
                self.idle.append(conn)
                return
        conn.close()

    def render_request(self, request: Request) -> bytes:
        target = request.target
        if not target.startswith("/"):  # absolute-form: keep only path and query
            after_scheme = target.split("://", 1)[-1]
            target = "/" + after_scheme.split("/", 1)[1] if "/" in after_scheme else "/"
        headers = [
            (name, value)
            for name, value in _end_to_end(request.headers, _REPLACED)
            if not name.lower().startswith(SOURCE_LABEL_HEADER_PREFIX)
        ]
        lines = [f"{request.method} {self.upstream.base_path}{target} HTTP/1.1"]
        lines.append(f"Host: {self.upstream.host_header}")
        lines += [f"{name}: {value}" for name, value in [*headers, *self.identity]]
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(request.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body

    def _attempt(
        self, conn: BufferedSocket, payload: bytes, request: Request, deadline: float, reused: bool
    ) -> UpstreamAnswer:
        conn.deadline = deadline
        done = False
        try:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            conn.sock.settimeout(left)
            conn.sock.sendall(payload)
            # The long wait (an injected delay upstream) is for the answer's first byte: watch
            # the caller meanwhile, and drop the upstream request if it hangs up.
            if not request.wait(deadline - time.monotonic(), conn.sock.fileno()):
                raise TimeoutError("timed out")
            try:
                answer = read_answer(conn, request.method == "HEAD")
            except ConnectionError as exc:
                partial = exc.partial if isinstance(exc, IncompleteRead) else b""
                if reused and not partial:
                    raise _StaleConnection from exc
                raise
            done = True
            return answer
        except ConnectionError:
            if reused:
                raise _StaleConnection from None
            raise
        finally:
            if not done:
                conn.close()

    def _open(self, deadline: float) -> BufferedSocket:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        sock = socket.create_connection(self.address, timeout=left)
        set_nodelay(sock)
        return BufferedSocket(sock)

    def exchange(self, payload: bytes, request: Request, deadline: float) -> UpstreamAnswer:
        conn = self._take_idle()
        if conn is not None:
            try:
                answer = self._attempt(conn, payload, request, deadline, reused=True)
            except _StaleConnection:
                conn = None
            else:
                self._finish(conn, answer)
                return answer
        conn = self._open(deadline)
        answer = self._attempt(conn, payload, request, deadline, reused=False)
        self._finish(conn, answer)
        return answer

    def _finish(self, conn: BufferedSocket, answer: UpstreamAnswer) -> None:
        if answer.reusable:
            self._give_back(conn)
        else:
            conn.close()

    def _error(self, status: int, why: str) -> Response:
        host, port = self.address
        return text_response(
            status,
            f"{status} {'Gateway Timeout' if status == 504 else 'Bad Gateway'}: {self.name} -> "
            f"http://{self.upstream.host_header} (via {host}:{port}): {why}\n",
        )

    def __call__(self, request: Request) -> Response:
        payload = self.render_request(request)
        try:
            answer = self.exchange(payload, request, time.monotonic() + self.timeout)
        except ClientGone:
            raise
        except TimeoutError:
            return self._error(504, f"no answer within {self.timeout:g}s")
        except HTTPError as exc:
            return self._error(502, str(exc))
        except OSError as exc:
            return self._error(502, f"{type(exc).__name__}: {exc}".rstrip(": "))
        # A HEAD answer keeps the upstream's Content-Length: the size a GET would return.
        own = frozenset({"date"}) if request.method == "HEAD" else _OWN_RESPONSE
        headers = _end_to_end(answer.headers, own)
        return Response(answer.status, answer.body, headers, answer.reason or None)

    def close(self) -> None:
        with self.lock:
            while self.idle:
                self.idle.pop().close()


def make_handler(upstream: Upstream, timeout: float, sidecar: Sidecar, name: str) -> Handler:
    return Proxy(upstream, timeout, sidecar, name)
