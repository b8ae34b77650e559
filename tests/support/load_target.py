"""A real local HTTP/1.1 target for load tests: asyncio server in its own thread.

Behaviour per request comes from a function ``(index, method, path, headers, body) ->
Reply``; a reply may be delayed (without blocking other connections), never sent, chunked,
or close the connection. ``stall`` freezes every answer during a time window, like a GC
pause. Binds 127.0.0.1 on an OS-assigned port; ``stop()`` ends the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"hello"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    never: bool = False  # accept the request and never answer
    chunked: bool = False
    close: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    version: str = "HTTP/1.1"


Behaviour = Callable[[int, str, str, dict[str, str], bytes], Reply]


def ok(*_: object) -> Reply:
    return Reply()


class Target:
    def __init__(self, behaviour: Behaviour = ok, stall_every: float = 0.0, stall_for: float = 0.0):
        self.behaviour = behaviour
        self.stall_every = stall_every
        self.stall_for = stall_for
        self.seen: list[Seen] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._stop_event: asyncio.Event | None = None
        self._t0 = 0.0
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def start(self) -> Target:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test target did not start")
        return self

    def stop(self) -> None:
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            # An asyncio.Event remembers being set, however early stop() comes.
            loop.call_soon_threadsafe(event.set)
        self._thread.join(timeout=10)

    def _stall_left(self) -> float:
        if not self.stall_every:
            return 0.0
        # Stalls for `stall_for` at the end of every `stall_every` period since start.
        phase = (time.perf_counter() - self._t0) % self.stall_every
        start = self.stall_every - self.stall_for
        return self.stall_every - phase if phase >= start else 0.0

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        target = self

        class Proto(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t: asyncio.Transport = transport  # type: ignore[assignment]
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.buf = b""
                with target._lock:
                    target.connections += 1

            def data_received(self, data: bytes) -> None:
                self.buf += data
                while True:
                    end = self.buf.find(b"\r\n\r\n")
                    if end < 0:
                        return
                    head = self.buf[:end].decode("latin-1")
                    lines = head.split("\r\n")
                    method, path, version = lines[0].split(" ", 2)
                    headers = {}
                    for line in lines[1:]:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                    length = int(headers.get("content-length", "0"))
                    if len(self.buf) < end + 4 + length:
                        return
                    body = self.buf[end + 4 : end + 4 + length]
                    self.buf = self.buf[end + 4 + length :]
                    with target._lock:
                        index = len(target.seen)
                        target.seen.append(Seen(method, path, headers, body, version))
                    reply = target.behaviour(index, method, path, headers, body)
                    if reply.never:
                        continue
                    delay = max(reply.delay, target._stall_left())
                    if delay > 0:
                        loop.call_later(delay, self._send, reply)
                    else:
                        self._send(reply)

            def _send(self, reply: Reply) -> None:
                if self.t.is_closing():
                    return
                hdrs = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
                if reply.close:
                    hdrs += "Connection: close\r\n"
                status = f"HTTP/1.1 {reply.status} X\r\n"
                if reply.chunked:
                    half = len(reply.body) // 2
                    chunks = [reply.body[:half], reply.body[half:]]
                    payload = (
                        b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks if c)
                        + b"0\r\n\r\n"
                    )
                    self.t.write(
                        (status + hdrs + "Transfer-Encoding: chunked\r\n\r\n").encode() + payload
                    )
                else:
                    self.t.write(
                        (status + hdrs + f"Content-Length: {len(reply.body)}\r\n\r\n").encode()
                        + reply.body
                    )
                if reply.close:
                    self.t.close()

        async def main() -> None:
            self._stop_event = asyncio.Event()
            self._server = await loop.create_server(Proto, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._t0 = time.perf_counter()
            self._ready.set()
            try:
                await self._stop_event.wait()
            finally:
                self._server.close()

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()


@contextlib.contextmanager
def started_targets() -> Iterator[Callable[..., Target]]:
    """``make(behaviour=ok, **kw)`` starts a Target; every one started is stopped after."""
    started: list[Target] = []

    def make(behaviour: Behaviour = ok, **kw: float) -> Target:
        target = Target(behaviour, **kw).start()
        started.append(target)
        return target

    try:
        yield make
    finally:
        for target in started:
            target.stop()
