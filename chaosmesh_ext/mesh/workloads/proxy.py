"""The proxy workload: a reverse proxy like the seed's nginx in front of tomcat.

Every request is forwarded to ``chaosmesh.io/upstream`` through the mesh, as a pod's
traffic goes through its sidecar: the TCP connection goes to ``Sidecar.connect_address`` (the
outbound listener for the upstream's port) with ``Host`` set to the upstream as a client would
write it, plus the sidecar's identity headers. So the upstream's VirtualService (delay, abort)
applies behind the proxy and the caller's (timeout, retries) in front of it.

Like nginx: method, path, query, body and end-to-end headers are kept; the upstream's
status, headers and body come back; idle upstream connections are kept for reuse; no answer
within the proxy timeout (nginx's proxy_read_timeout, 60 s by default; here for the whole
exchange) -> 504; an upstream that cannot be reached or breaks the exchange -> 502.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass

from chaosmesh_ext._sidecar import (
    SOURCE_LABEL_HEADER_PREFIX,
    SOURCE_NAMESPACE_HEADER,
    SOURCE_WORKLOAD_HEADER,
    Sidecar,
)

from ._http import (
    HOP_BY_HOP,
    MAX_HEAD,
    Handler,
    HTTPError,
    Request,
    Response,
    read_chunked,
    set_nodelay,
    text_response,
)
from .spec import Upstream

log = logging.getLogger(__name__)

MAX_IDLE = 64
# Headers the proxy sets itself, so a caller's copy must not be relayed alongside. Expect is
# dropped too: the proxy already holds the whole body and sends it at once.
_REPLACED = frozenset(
    {"host", "content-length", "expect", SOURCE_WORKLOAD_HEADER, SOURCE_NAMESPACE_HEADER}
)
# Response headers the server core writes itself.
_OWN_RESPONSE = frozenset({"content-length", "date"})

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class UpstreamAnswer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    reusable: bool


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


async def read_answer(reader: asyncio.StreamReader, head_only: bool) -> UpstreamAnswer:
    """One HTTP/1.x response, skipping interim 1xx answers."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
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
        body = await read_chunked(reader)
    elif lower.get("content-length", "").isdigit():
        body = await reader.readexactly(int(lower["content-length"]))
    else:
        body = await reader.read()  # delimited by the upstream closing the connection
        reusable = False
    return UpstreamAnswer(status, reason, headers, body, reusable)


class Proxy:
    def __init__(self, upstream: Upstream, timeout: float, sidecar: Sidecar, name: str) -> None:
        self.upstream = upstream
        self.timeout = timeout
        self.sidecar = sidecar
        self.name = name
        self.address = sidecar.connect_address(upstream.host, upstream.port)
        self.idle: deque[_Conn] = deque()
        self.identity = list(sidecar.identity_headers().items())

    def _take_idle(self) -> _Conn | None:
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    def _give_back(self, conn: _Conn) -> None:
        if len(self.idle) < MAX_IDLE:
            self.idle.append(conn)
        else:
            conn[1].close()

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

    async def _attempt(
        self, conn: _Conn, payload: bytes, head_only: bool, reused: bool
    ) -> UpstreamAnswer:
        reader, writer = conn
        done = False
        try:
            writer.write(payload)
            await writer.drain()
            try:
                answer = await read_answer(reader, head_only)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                partial = getattr(exc, "partial", b"")
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
                writer.close()

    async def _open(self) -> _Conn:
        host, port = self.address
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
        set_nodelay(writer)
        return reader, writer

    async def exchange(self, payload: bytes, head_only: bool) -> UpstreamAnswer:
        conn = self._take_idle()
        if conn is not None:
            try:
                answer = await self._attempt(conn, payload, head_only, reused=True)
            except _StaleConnection:
                conn = None
            else:
                self._finish(conn, answer)
                return answer
        conn = await self._open()
        answer = await self._attempt(conn, payload, head_only, reused=False)
        self._finish(conn, answer)
        return answer

    def _finish(self, conn: _Conn, answer: UpstreamAnswer) -> None:
        if answer.reusable:
            self._give_back(conn)
        else:
            conn[1].close()

    def _error(self, status: int, why: str) -> Response:
        host, port = self.address
        return text_response(
            status,
            f"{status} {'Gateway Timeout' if status == 504 else 'Bad Gateway'}: {self.name} -> "
            f"http://{self.upstream.host_header} (via {host}:{port}): {why}\n",
        )

    async def __call__(self, request: Request) -> Response:
        payload = self.render_request(request)
        try:
            answer = await asyncio.wait_for(
                self.exchange(payload, request.method == "HEAD"), self.timeout
            )
        except TimeoutError:
            return self._error(504, f"no answer within {self.timeout:g}s")
        except HTTPError as exc:
            return self._error(502, str(exc))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            return self._error(502, f"{type(exc).__name__}: {exc}".rstrip(": "))
        # A HEAD answer keeps the upstream's Content-Length: the size a GET would return.
        own = frozenset({"date"}) if request.method == "HEAD" else _OWN_RESPONSE
        headers = _end_to_end(answer.headers, own)
        return Response(answer.status, answer.body, headers, answer.reason or None)

    def close(self) -> None:
        while self.idle:
            with contextlib.suppress(Exception):
                self.idle.pop()[1].close()


def make_handler(upstream: Upstream, timeout: float, sidecar: Sidecar, name: str) -> Handler:
    return Proxy(upstream, timeout, sidecar, name)
