"""The proxy workload forwards through the mesh's outbound listener, like nginx behind a sidecar.

A second echo stands in for the mesh's outbound listener for port 8080: the proxy must connect
there (not to the name in its upstream URL) and keep ``Host: tomcat-svc:8080``.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from chaosmesh_ext._sidecar import Sidecar

from .conftest import HOST, StartWorkload, call, free_port

UPSTREAM = {"chaosmesh.io/upstream": "http://tomcat-svc:8080"}


def nginx_sidecar(listener_port: int) -> Sidecar:
    return Sidecar(
        outbound={8080: (HOST, listener_port)},
        workload="nginx",
        namespace="istio-test",
        labels={"server": "nginx"},
    )


def test_forwards_through_mapped_listener_keeping_request(start_workload: StartWorkload) -> None:
    tomcat = start_workload("echo", deployment="tomcat", version="v1", pod="tomcat-0")
    nginx = start_workload(
        "proxy", deployment="nginx", annotations=UPSTREAM, sidecar=nginx_sidecar(tomcat.port)
    )
    answer = call(
        nginx.port,
        "/anything/x?q=1&q=2",
        method="POST",
        body=b'{"k": 1}',
        headers={
            "Host": "nginx-svc",
            "end-user": "jason",
            "Content-Type": "application/json",
            # a caller cannot pass itself off as another workload through the proxy
            "x-chaosmesh-source-workload": "someone-else",
        },
    )
    assert answer.status == 200
    assert answer.headers["x-chaosmesh-pod"] == "tomcat-0"  # the upstream's headers come back
    seen = json.loads(answer.body)
    assert seen["method"] == "POST"
    assert seen["data"] == '{"k": 1}'
    assert seen["args"] == {"q": ["1", "2"]}
    assert seen["headers"]["Host"] == "tomcat-svc:8080"
    assert seen["headers"]["End-User"] == "jason"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["headers"]["X-Chaosmesh-Source-Workload"] == "nginx"
    assert seen["headers"]["X-Chaosmesh-Source-Namespace"] == "istio-test"
    assert seen["headers"]["X-Chaosmesh-Src-Label-Server"] == "nginx"


def test_relays_status_and_head(start_workload: StartWorkload) -> None:
    tomcat = start_workload("echo", deployment="tomcat")
    nginx = start_workload(
        "proxy", deployment="nginx", annotations=UPSTREAM, sidecar=nginx_sidecar(tomcat.port)
    )
    assert call(nginx.port, "/status/503").status == 503
    get = call(nginx.port, "/")
    head = call(nginx.port, "/", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"]


def test_dead_upstream_is_502(start_workload: StartWorkload) -> None:
    nginx = start_workload(
        "proxy", deployment="nginx", annotations=UPSTREAM, sidecar=nginx_sidecar(free_port())
    )
    answer = call(nginx.port, "/")
    assert answer.status == 502
    assert "tomcat-svc:8080" in answer.text


def test_slow_upstream_is_504_after_proxy_timeout(start_workload: StartWorkload) -> None:
    tomcat = start_workload("echo", deployment="tomcat")
    nginx = start_workload(
        "proxy",
        deployment="nginx",
        sidecar=nginx_sidecar(tomcat.port),
        annotations={**UPSTREAM, "chaosmesh.io/proxy-timeout": "500ms"},
    )
    answer = call(nginx.port, "/delay/5")
    assert answer.status == 504
    assert "no answer within 0.5s" in answer.text
    assert call(nginx.port, "/").status == 200  # the proxy keeps serving


class _CountingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    connections = 0


class _KeepAliveHandler(socketserver.StreamRequestHandler):
    """Answers every request with 200 on the same connection; counts connections."""

    server: _CountingServer

    def handle(self) -> None:
        self.server.connections += 1
        while True:
            lines = []
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                lines.append(line)
            if not lines:
                return
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@pytest.fixture
def counting_upstream() -> Iterator[_CountingServer]:
    server = _CountingServer((HOST, 0), _KeepAliveHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_upstream_connections_are_reused(
    start_workload: StartWorkload, counting_upstream: _CountingServer
) -> None:
    nginx = start_workload(
        "proxy",
        deployment="nginx",
        annotations=UPSTREAM,
        sidecar=nginx_sidecar(counting_upstream.server_address[1]),
    )
    # Separate client connections, one after the other: one upstream connection serves all.
    assert [call(nginx.port, "/").status for _ in range(20)] == [200] * 20
    assert counting_upstream.connections == 1


def test_upstream_closing_idle_connection_is_retried_transparently(
    start_workload: StartWorkload,
) -> None:
    # An upstream that answers once per connection and then closes (keep-alive not honoured
    # although it did not say "Connection: close"): the proxy must not hand out a 502.
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                    data += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        nginx = start_workload(
            "proxy", deployment="nginx", annotations=UPSTREAM, sidecar=nginx_sidecar(port)
        )
        assert [call(nginx.port, "/").text for _ in range(5)] == ["once"] * 5
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def test_caller_hanging_up_closes_the_upstream_request(start_workload: StartWorkload) -> None:
    # As nginx does: when the caller (its sidecar, on a route timeout) goes away, the proxy
    # drops its upstream request instead of holding a connection until the upstream answers.
    listener = socket.create_server((HOST, 0))
    listener.settimeout(20)
    upstream_closed = threading.Event()

    def never_answer() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(20)
            try:
                while conn.recv(65536):
                    pass  # read the request, answer nothing, wait for the proxy to hang up
            except OSError:
                return
            upstream_closed.set()

    thread = threading.Thread(target=never_answer)
    thread.start()
    try:
        nginx = start_workload(
            "proxy",
            deployment="nginx",
            annotations=UPSTREAM,
            sidecar=nginx_sidecar(listener.getsockname()[1]),
        )
        with socket.create_connection((HOST, nginx.port), timeout=10) as caller:
            caller.sendall(b"GET /slow HTTP/1.1\r\nHost: nginx-svc\r\n\r\n")
            assert not upstream_closed.wait(0.5)  # the request is out, waiting upstream
        assert upstream_closed.wait(15)
    finally:
        listener.close()
        thread.join(25)


def test_sigterm_exits_promptly_with_a_request_in_flight(start_workload: StartWorkload) -> None:
    tomcat = start_workload("echo", deployment="tomcat")
    nginx = start_workload(
        "proxy", deployment="nginx", annotations=UPSTREAM, sidecar=nginx_sidecar(tomcat.port)
    )
    with socket.create_connection((HOST, nginx.port), timeout=10) as caller:
        caller.sendall(b"GET /delay/10 HTTP/1.1\r\nHost: nginx-svc\r\n\r\n")
        time.sleep(0.2)
        nginx.process.terminate()
        assert nginx.process.wait(5) == 0  # not after the upstream's 10 s
