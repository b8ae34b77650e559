"""The proxy workload: a service that calls its upstreams through the mesh, as apps in a call
chain do (nginx in front of tomcat; Bookinfo's productpage -> details + reviews).

Every request is forwarded to each ``chaosmesh.io/upstream`` URL in turn (one or several,
comma-separated) through the mesh, as a pod's traffic goes through its sidecar: the TCP
connection goes to ``Sidecar.connect_address`` (the outbound listener for the upstream's port,
looked up per connection so a listener added later is found) with ``Host`` set to the
upstream as a client would write it, plus the sidecar's identity headers. So each upstream's
VirtualService (delay, abort) applies behind the proxy and the caller's (timeout, retries) in
front of it. Method, path (after the URL's base path), query, body and end-to-end headers are
kept (``Accept-Encoding`` is not: the answer is text the proxy writes).

The answer is the proxy's own, so a version split measured through it counts the proxy: its
identity line and echo fields (``reflect``), then, per upstream ``i`` in Istio's echo
forwarding format, ``[i] Url=``, ``[i] StatusCode=``, ``[i] ResponseHeader=Name:value`` and
the upstream's body as ``[i body] ...`` lines (nested proxies nest, so the whole chain is
visible), or ``[i error] ...`` when there was no answer. Status, reason and end-to-end
headers come, as nginx's ``proxy_pass`` relays them, from the first upstream that answered
>= 400, else from the first upstream; an upstream with no answer within the proxy timeout
(nginx's proxy_read_timeout, 60 s by default; here for each upstream's whole exchange) counts
as 504, one that cannot be reached or breaks the exchange as 502. Idle upstream connections
are kept for reuse; a caller that hangs up while the proxy waits for an upstream's answer
drops the upstream request (its connection closed). Each caller connection has its own
thread (``_http``).
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
)
from .reflect import IDENTITY_HEADERS, Identity, canonical_header, request_lines
from .upstream import Upstream

TYPE_CHECKING = False  # no typing at run time: see _http's docstring
if TYPE_CHECKING:
    from ._http import Handler

MAX_IDLE = 64
# Headers the proxy sets itself, so a caller's copy must not be relayed alongside. Expect is
# dropped too: the proxy already holds the whole body and sends it at once; Accept-Encoding
# because the answer embeds the upstreams' bodies as text.
_REPLACED = frozenset(
    {
        "host",
        "content-length",
        "expect",
        "accept-encoding",
        SOURCE_WORKLOAD_HEADER,
        SOURCE_NAMESPACE_HEADER,
    }
)
# Upstream response headers not relayed: they describe the upstream's body or identity, and
# the answer has the proxy's own (the server core writes Content-Length and Date).
_NOT_RELAYED = frozenset(
    {"content-length", "content-type", "content-encoding", "content-md5", "etag", "date"}
    | IDENTITY_HEADERS
)


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


class Hop:
    """What one upstream made of the request: its answer, or why there was none."""

    __slots__ = ("answer", "error", "status", "url")

    def __init__(
        self, url: str, status: int, answer: UpstreamAnswer | None = None, error: str = ""
    ) -> None:
        self.url = url
        self.status = status
        self.answer = answer
        self.error = error

    def lines(self, index: int) -> list[str]:
        """Istio's echo forwarding format: ``[i] Field=value`` and ``[i body] line``."""
        out = [f"[{index}] Url={self.url}", f"[{index}] StatusCode={self.status}"]
        if self.answer is None:
            return [*out, f"[{index} error] {self.error}"]
        headers = sorted(
            ((canonical_header(name), value) for name, value in self.answer.headers),
            key=lambda item: item[0],
        )
        out += [f"[{index}] ResponseHeader={name}:{value}" for name, value in headers]
        text = self.answer.body.decode("utf-8", "replace")
        out += [f"[{index} body] {line}" for line in text.splitlines() if line]
        return out


class Pool:
    """Keep-alive connections to one upstream, through the sidecar's outbound listener."""

    def __init__(self, upstream: Upstream, sidecar: Sidecar) -> None:
        self.upstream = upstream
        self.sidecar = sidecar
        self.idle: list[BufferedSocket] = []
        self.lock = threading.Lock()  # the idle pool is shared by the callers' threads

    @property
    def address(self) -> tuple[str, int]:
        # Per connection, not once: the mesh adds listeners for Services created later.
        return self.sidecar.connect_address(self.upstream.host, self.upstream.port)

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

    def close(self) -> None:
        with self.lock:
            while self.idle:
                self.idle.pop().close()


class Proxy:
    def __init__(
        self, upstreams: list[Upstream], timeout: float, sidecar: Sidecar, identity: Identity
    ) -> None:
        self.pools = [Pool(upstream, sidecar) for upstream in upstreams]
        self.timeout = timeout
        self.identity = identity
        self.name = f"proxy {identity.deployment}"
        self.outbound_identity = list(sidecar.identity_headers().items())

    def render_request(self, request: Request, upstream: Upstream) -> bytes:
        target = request.target
        if not target.startswith("/"):  # absolute-form: keep only path and query
            after_scheme = target.split("://", 1)[-1]
            target = "/" + after_scheme.split("/", 1)[1] if "/" in after_scheme else "/"
        headers = [
            (name, value)
            for name, value in _end_to_end(request.headers, _REPLACED)
            if not name.lower().startswith(SOURCE_LABEL_HEADER_PREFIX)
        ]
        lines = [f"{request.method} {upstream.base_path}{target} HTTP/1.1"]
        lines.append(f"Host: {upstream.host_header}")
        lines += [f"{name}: {value}" for name, value in [*headers, *self.outbound_identity]]
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(request.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body

    def call(self, pool: Pool, request: Request) -> Hop:
        """One upstream's answer to ``request``; 504/502 as nginx when there is none."""
        upstream = pool.upstream
        url = f"http://{upstream.host_header}{upstream.base_path}{request.target}"
        payload = self.render_request(request, upstream)
        try:
            answer = pool.exchange(payload, request, time.monotonic() + self.timeout)
        except ClientGone:
            raise
        except TimeoutError:
            return self._failed(pool, url, 504, f"no answer within {self.timeout:g}s")
        except HTTPError as exc:
            return self._failed(pool, url, 502, str(exc))
        except OSError as exc:
            return self._failed(pool, url, 502, f"{type(exc).__name__}: {exc}".rstrip(": "))
        return Hop(url, answer.status, answer)

    def _failed(self, pool: Pool, url: str, status: int, why: str) -> Hop:
        host, port = pool.address
        phrase = "Gateway Timeout" if status == 504 else "Bad Gateway"
        return Hop(
            url,
            status,
            error=f"{status} {phrase}: {self.name} -> http://{pool.upstream.host_header} "
            f"(via {host}:{port}): {why}",
        )

    def __call__(self, request: Request) -> Response:
        hops = [self.call(pool, request) for pool in self.pools]
        deciding = next((hop for hop in hops if hop.status >= 400), hops[0])
        lines = request_lines(self.identity, request, deciding.status)
        for index, hop in enumerate(hops):
            lines += hop.lines(index)
        headers = [("Content-Type", "text/plain; charset=utf-8"), *self.identity.headers()]
        reason = None
        if deciding.answer is not None:
            headers += _end_to_end(deciding.answer.headers, _NOT_RELAYED)
            reason = deciding.answer.reason or None
        body = ("\n".join(lines) + "\n").encode("utf-8", "replace")
        return Response(deciding.status, body, headers, reason)

    def close(self) -> None:
        for pool in self.pools:
            pool.close()


def make_handler(
    upstreams: list[Upstream], timeout: float, sidecar: Sidecar, identity: Identity
) -> Handler:
    return Proxy(upstreams, timeout, sidecar, identity)
