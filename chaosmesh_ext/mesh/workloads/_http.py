"""A small asyncio HTTP/1.1 server core shared by the echo and proxy workloads.

Why not http.server: BaseHTTPRequestHandler writes the status line and the body separately,
and with Nagle plus the peer's delayed ACK every response then costs ~27 ms. Here every
response leaves in one write on a TCP_NODELAY socket. The core speaks enough HTTP/1.1 for a
sidecar and for curl: keep-alive (1.1 default, 1.0 on request), Content-Length and chunked
request bodies, ``Expect: 100-continue``, HEAD, and pipelined requests answered in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
# Long on purpose: a sidecar keeps upstream connections idle for up to an hour, and a server
# that closes first races the sidecar's next request on that connection (503 "UC").
IDLE_TIMEOUT = 3600.0
# Once a request has started arriving, the rest of it must follow promptly.
REQUEST_TIMEOUT = 60.0

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


class HTTPError(Exception):
    """A request this server refuses; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    peer: str = ""

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


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    reason: str | None = None


Handler = Callable[[Request], Awaitable[Response]]


def text_response(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(
        status, text.encode(), [("Content-Type", "text/plain; charset=utf-8"), *(headers or [])]
    )


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


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


async def read_chunked(reader: asyncio.StreamReader, limit: int = MAX_BODY) -> bytes:
    """A chunked body (trailers are read and dropped)."""
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise HTTPError(400, "malformed chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(body)
        if len(body) + size > limit:
            raise HTTPError(413, "body too large")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise HTTPError(400, "malformed chunk")


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The next request head, or None once the client has closed (or idled out)."""
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        return None  # the client went away between requests: the normal end of keep-alive
    except asyncio.LimitOverrunError:
        raise HTTPError(431, "request head too large") from None


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, peer: str
) -> Request:
    method, target, version, headers = parse_head(head.lstrip(b"\r\n")[:-4])
    request = Request(method, target, version, headers, peer=peer)
    encodings = request.header_tokens("transfer-encoding")
    length = request.header("content-length")
    if encodings and length is not None:
        raise HTTPError(400, "both Transfer-Encoding and Content-Length")
    if (request.header("expect") or "").lower() == "100-continue" and (encodings or length):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if encodings:
        if "chunked" not in encodings:
            raise HTTPError(501, f"unsupported Transfer-Encoding {sorted(encodings)}")
        request.body = await asyncio.wait_for(read_chunked(reader), REQUEST_TIMEOUT)
    elif length is not None:
        if not length.isdigit():
            raise HTTPError(400, f"bad Content-Length {length!r}")
        if int(length) > MAX_BODY:
            raise HTTPError(413, "body too large")
        request.body = await asyncio.wait_for(reader.readexactly(int(length)), REQUEST_TIMEOUT)
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


def set_nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _answer(handler: Handler, request: Request) -> Response:
    try:
        return await handler(request)
    except Exception:
        log.exception("handler failed for %s %s", request.method, request.target)
        return text_response(500, "internal error in the workload\n")


class _Reader(asyncio.StreamReader):
    """A StreamReader that reports the client hanging up, so the work for it can stop."""

    on_hangup: Callable[[], None] | None = None

    def feed_eof(self) -> None:
        super().feed_eof()
        if self.on_hangup is not None:
            self.on_hangup()

    def set_exception(self, exc: Exception) -> None:
        super().set_exception(exc)
        if self.on_hangup is not None:
            self.on_hangup()


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler
) -> None:
    set_nodelay(writer)
    peername = writer.get_extra_info("peername")
    peer = str(peername[0]) if peername else ""
    task = asyncio.current_task()
    busy = hung_up = False

    def on_hangup() -> None:
        # A keep-alive client closing while its answer is being made (a caller's sidecar on a
        # route timeout) will never read it: stop the work, as nginx drops its upstream
        # request when its client goes away. Costs nothing per request, unlike a read-ahead.
        nonlocal hung_up
        if busy and not hung_up and task is not None:
            hung_up = True
            task.cancel()

    if isinstance(reader, _Reader):
        reader.on_hangup = on_hangup
    try:
        while True:
            try:
                head = await _read_head(reader)
                if head is None:
                    break
                request = await _read_request(reader, writer, head, peer)
            except HTTPError as exc:
                writer.write(render(text_response(exc.status, f"{exc}\n"), False, False, False))
                break
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                break  # a request cut off half way: nobody is left to answer
            keep_alive = _keep_alive(request)
            # Without keep-alive a client may half-close right after its request: not a hang-up.
            busy = keep_alive
            try:
                response = await _answer(handler, request)
            except asyncio.CancelledError:
                if not hung_up or task is None:
                    raise
                task.uncancel()
                break
            finally:
                busy = False
            writer.write(
                render(
                    response,
                    request.method == "HEAD",
                    keep_alive,
                    keep_alive and request.version == "HTTP/1.0",
                )
            )
            await writer.drain()
            if not keep_alive:
                break
    except ConnectionError:
        pass
    finally:
        if isinstance(reader, _Reader):
            reader.on_hangup = None
        writer.close()


def run(make_handler: Callable[[], Handler], host: str, port: int, name: str) -> None:
    """Serve until SIGTERM or SIGINT; returns promptly even with requests in flight."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    run_async(_serve(make_handler, host, port, name))


async def _serve(make_handler: Callable[[], Handler], host: str, port: int, name: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    handler = make_handler()

    def protocol() -> asyncio.StreamReaderProtocol:
        # asyncio.start_server, with a reader that reports hang-ups.
        return asyncio.StreamReaderProtocol(
            _Reader(limit=MAX_HEAD), lambda r, w: serve_connection(r, w, handler)
        )

    server = await loop.create_server(protocol, host, port, backlog=1024)
    log.info("%s listening on %s:%d", name, host, port)
    await stop.wait()
    log.info("%s stopping", name)
    # Stop accepting; open connections (a /delay in flight) are cancelled by run_async's exit.
    server.close()


def run_async(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when installed (cheaper per request), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
