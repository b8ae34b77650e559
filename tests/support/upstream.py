"""A tiny HTTP/1.1 upstream for the Envoy tests: asyncio, one write per response, no Nagle.

``/`` answers with the server's name, ``/status/N`` with status N, ``/delay/S`` after S
seconds; ``hits`` counts requests. BaseHTTPRequestHandler would add ~27 ms per response
(two writes + Nagle + delayed ACK), which would blur every timing the tests look at.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any


class Upstream:
    def __init__(self, name: str):
        self.name = name
        self.hits = 0
        self.port = 0
        self.seen_headers: list[dict[str, str]] = []
        self.seen_paths: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> Upstream:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        future.result(timeout=5)
        return self

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        sock: Any = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, _, value = line.partition(":")
                        headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                self.hits += 1
                self.seen_headers.append(headers)
                self.seen_paths.append(path)
                status, body = 200, f"{self.name}\n"
                if path.startswith("/status/"):
                    status = int(path.split("/")[2])
                elif path.startswith("/delay/"):
                    await asyncio.sleep(float(path.split("/")[2]))
                data = body.encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-length: {len(data)}\r\n"
                    f"x-upstream: {self.name}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.CancelledError,
            ConnectionError,
            asyncio.LimitOverrunError,
        ):
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()
