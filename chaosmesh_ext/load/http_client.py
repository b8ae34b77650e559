"""A minimal, fast HTTP/1.1 client on asyncio protocols (uvloop when installed).

One :class:`HttpConnection` is one keep-alive connection, the unit fortio calls a thread.
It sends a request prepared once, parses just enough of the response (status, length,
chunking, ``Connection: close``) and returns the status code; ``-1`` stands for every
socket error and timeout, as in fortio. After a non-OK answer the connection is closed, as
fortio's fast client does. Inside the embedded mesh the TCP connection goes to the sidecar's
outbound listener (``Sidecar.connect_address``) with the Host header unchanged, so Envoy
applies the mesh's routes, faults and breakers exactly as a pod's sidecar would.
"""

from __future__ import annotations

import asyncio
import random
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .._sidecar import Sidecar
from .options import LoadOptions, ParsedURL
from .stats import Histogram

_STATUS_OK_EXTRA = 418  # fortio counts 418 (teapot) as OK, for its own echo server tests


def code_is_ok(code: int) -> bool:
    """fortio's OK: 2xx or 418."""
    return 200 <= code < 300 or code == _STATUS_OK_EXTRA


def build_request(
    target: ParsedURL,
    method: str,
    headers: Sequence[tuple[str, str]],
    payload: bytes | None,
    extra_headers: dict[str, str] | None = None,
    *,
    http10: bool = False,
    keepalive: bool = True,
) -> bytes:
    """The request bytes, built once per run (fortio's fast client does the same).

    As fortio's: HTTP/1.0 sends no Host header unless one is given with ``-H``, and no
    keep-alive; HTTP/1.1 without keep-alive asks for ``Connection: close``.
    """
    names = {name.lower() for name, _ in headers}
    lines = [f"{method} {target.path} HTTP/{'1.0' if http10 else '1.1'}"]
    if "host" not in names and not http10:
        lines.append(f"Host: {target.host_header}")
    if not keepalive and not http10 and "connection" not in names:
        lines.append("Connection: close")
    if "user-agent" not in names:
        lines.append("User-Agent: fortio.org/fortio-chaosmesh")
    for name, value in headers:
        lines.append(f"{name}: {value}")
    for name, value in (extra_headers or {}).items():
        if name.lower() not in names:
            lines.append(f"{name}: {value}")
    body = payload or b""
    if (body or method in ("POST", "PUT", "PATCH")) and "content-length" not in names:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


class ResponseInfo:
    """What one exchange produced; headers and body only when capture was asked for."""

    __slots__ = ("body", "code", "header_size", "headers", "size")

    def __init__(self) -> None:
        self.code = -1
        self.size = 0
        self.header_size = 0
        self.headers: bytes = b""
        self.body: bytes = b""


class _Protocol(asyncio.Protocol):
    """Parses one response at a time and hands the status code to a waiting future."""

    def __init__(self, head_only: bool, capture: bool) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.fut: asyncio.Future[int] | None = None
        self.head_only = head_only
        self.capture = capture
        self.closed = False
        self.keep_alive = True
        self.info = ResponseInfo()
        self._reset()

    def _reset(self) -> None:
        self.header_len = -1
        self.code = -1
        self.content_length = -1
        self.chunked = False
        self.until_close = False
        self.chunk_pos = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        fut = self.fut
        if fut is not None and not fut.done():
            if self.until_close and self.header_len >= 0:
                self._complete(len(self.buf))
            else:
                fut.set_result(-1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.fut is None:
            return  # unsolicited bytes; dropped when the next request starts
        if self.header_len < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.header_len = end + 4
            self._parse_head(bytes(buf[: self.header_len]))
            if self.fut is None or self.fut.done():
                return
        if self.content_length >= 0:
            total = self.header_len + self.content_length
            if len(buf) >= total:
                self._complete(total)
        elif self.chunked:
            end = self._chunked_end()
            if end >= 0:
                self._complete(end)
        # until_close: completed in connection_lost

    def _parse_head(self, head: bytes) -> None:
        try:
            code = int(head[9:12])
        except ValueError:
            self._fail()
            return
        self.code = code
        lower = head.lower()
        if b"\r\nconnection: close" in lower or (
            head[:8] == b"HTTP/1.0" and b"keep-alive" not in lower
        ):
            self.keep_alive = False
        if self.head_only or code in (204, 304) or 100 <= code < 200:
            self.content_length = 0
            return
        m = _CONTENT_LENGTH.search(lower)
        if m:
            self.content_length = int(m.group(1))
        elif b"\r\ntransfer-encoding:" in lower and b"chunked" in lower:
            self.chunked = True
            self.chunk_pos = self.header_len
        else:
            self.until_close = True
            self.keep_alive = False

    def _chunked_end(self) -> int:
        # Walks chunk headers from where the last call stopped; -1 until the last chunk is in.
        buf = self.buf
        pos = self.chunk_pos
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return -1
            try:
                size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
            except ValueError:
                self._fail()
                return -1
            if size == 0:
                # last chunk: optional trailers, then an empty line
                end = buf.find(b"\r\n\r\n", eol)
                if end < 0:
                    if buf[eol : eol + 4] == b"\r\n\r\n":
                        return eol + 4
                    return -1
                return end + 4
            nxt = eol + 2 + size + 2
            if len(buf) < nxt:
                self.chunk_pos = pos
                return -1
            pos = nxt
            self.chunk_pos = pos

    def _complete(self, total: int) -> None:
        info = self.info
        info.code = self.code
        info.size = total
        info.header_size = self.header_len
        if self.capture:
            info.headers = bytes(self.buf[: self.header_len])
            info.body = bytes(self.buf[self.header_len : total])
        del self.buf[:total]
        fut = self.fut
        self.fut = None
        self._reset()
        if fut is not None and not fut.done():
            fut.set_result(info.code)

    def _fail(self) -> None:
        fut = self.fut
        self.fut = None
        self.keep_alive = False
        if fut is not None and not fut.done():
            fut.set_result(-1)


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)")


@dataclass(frozen=True)
class ConnectionSettings:
    """How every connection of a run connects and reuses its socket (fortio's client flags)."""

    keepalive: bool = True
    half_close: bool = False
    resolve: str | None = None
    unix_socket: str | None = None
    reuse_range: tuple[int, int] | None = None
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def from_options(cls, options: LoadOptions, target: ParsedURL) -> ConnectionSettings:
        """Raises ``OSError``/``ssl.SSLError`` when a certificate file cannot be loaded."""
        context = None
        if target.scheme == "https":
            context = ssl.create_default_context(cafile=options.ca_cert)
            if options.cert:
                context.load_cert_chain(options.cert, options.key)
            if options.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return cls(
            keepalive=options.keepalive and not options.http10,
            half_close=options.half_close,
            resolve=options.resolve,
            unix_socket=options.unix_socket,
            reuse_range=options.reuse_range,
            ssl_context=context,
        )


_DEFAULT_SETTINGS = ConnectionSettings()


class HttpConnection:
    """One keep-alive connection that performs the prepared request on demand."""

    def __init__(
        self,
        target: ParsedURL,
        request: bytes,
        timeout: float,
        sidecar: Sidecar | None = None,
        head_only: bool = False,
        capture: bool = False,
        resolution: float = 0.001,
        settings: ConnectionSettings = _DEFAULT_SETTINGS,
        offset: float = 0.0,
    ) -> None:
        self.target = target
        self.request = request
        self.timeout = timeout
        self.head_only = head_only
        self.capture = capture
        self.settings = settings
        # -resolve replaces the name, not the port; a sidecar still captures the connection.
        self.address = (sidecar or Sidecar()).connect_address(
            settings.resolve or target.host, target.port
        )
        self._ssl = settings.ssl_context
        if target.scheme == "https" and self._ssl is None:
            self._ssl = ssl.create_default_context()
        self.proto: _Protocol | None = None
        self.sockets = 0  # connections opened, fortio's "socket used"
        self.connect_times = Histogram(offset, resolution)
        self.peer: str = ""
        self.last_error: str = ""
        self.info = ResponseInfo()
        self._uses = 0  # calls on the current socket (-connection-reuse)
        self._max_uses = 0
        self.abandoned = False  # closed for good: its run's process is gone (abandon())

    async def _connect(self, deadline: float) -> _Protocol | None:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        self.sockets += 1
        settings = self.settings
        if settings.reuse_range is not None:
            self._uses = 0
            self._max_uses = random.randint(*settings.reuse_range)

        def protocol() -> _Protocol:
            return _Protocol(self.head_only, self.capture)

        server_hostname = self.target.host if self._ssl else None
        try:
            if settings.unix_socket:
                opening = loop.create_unix_connection(
                    protocol, settings.unix_socket, ssl=self._ssl, server_hostname=server_hostname
                )
            else:
                opening = loop.create_connection(
                    protocol,
                    self.address[0],
                    self.address[1],
                    ssl=self._ssl,
                    server_hostname=server_hostname,
                )
            _, proto = await asyncio.wait_for(opening, max(deadline - t0, 0.001))
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            self.last_error = (
                f"timed out after {self.timeout:g}s"
                if isinstance(exc, asyncio.TimeoutError)
                else str(exc)
            )
            return None
        self.connect_times.record(time.perf_counter() - t0)
        if not self.peer and proto.transport is not None:
            peer = proto.transport.get_extra_info("peername")
            if peer:
                self.peer = f"{peer[0]}:{peer[1]}"
        return proto

    async def fetch(self) -> int:
        """Send the request once; the status code, or -1 on socket error or timeout."""
        if self.abandoned:
            return -1
        loop = asyncio.get_running_loop()
        proto = self.proto
        if proto is None or proto.closed or not proto.keep_alive:
            if proto is not None and proto.transport is not None:
                proto.transport.close()
            proto = self.proto = await self._connect(loop.time() + self.timeout)
            if proto is None:
                return -1
        fut: asyncio.Future[int] = loop.create_future()
        proto.fut = fut
        if proto.buf:
            proto.buf.clear()
        assert proto.transport is not None
        proto.transport.write(self.request)
        settings = self.settings
        if not settings.keepalive:
            proto.keep_alive = False
            if settings.half_close and proto.transport.can_write_eof():
                proto.transport.write_eof()
        elif settings.reuse_range is not None:
            self._uses += 1
            if self._uses >= self._max_uses:
                proto.keep_alive = False
        handle = loop.call_later(self.timeout, _expire, fut)
        try:
            code = await fut
        finally:
            handle.cancel()
        if code == -1:
            self.last_error = (
                "connection closed by peer"
                if proto.closed
                else f"no answer within {self.timeout:g}s"
            )
            proto.fut = None
            proto.keep_alive = False
        elif not (200 <= code < 300 or code == 418):
            # fortio's fast client drops the connection after any non-OK answer.
            proto.keep_alive = False
        self.info = proto.info
        if not proto.keep_alive and proto.transport is not None:
            proto.transport.close()
        return code

    def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()
        self.proto = None

    def abandon(self) -> None:
        """Close, the call in flight ending as an error, and never connect again."""
        self.abandoned = True
        self.last_error = "the run was abandoned"
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.abort()
        self.proto = None


def _expire(fut: asyncio.Future[int]) -> None:
    if not fut.done():
        fut.set_result(-1)
