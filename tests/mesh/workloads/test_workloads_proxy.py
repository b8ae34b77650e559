"""The proxy workload calls its upstreams through the mesh's outbound listeners, like nginx or
Bookinfo's productpage behind a sidecar, and answers as itself with the chain visible.

An echo stands in for the mesh's outbound listener for port 8080: the proxy must connect
there (not to the name in its upstream URL) and keep ``Host: tomcat-svc:8080``.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from chaosmesh_ext._sidecar import Sidecar

from .conftest import HOST, StartWorkload, call, free_port

# Each test runs with replicas as processes of their own and in shared replica hosts.
REPLICA_HOSTS_TOO = True


def upstream_body(text: str, index: int = 0) -> str:
    """The body upstream ``index`` answered, from the proxy's ``[i body] line`` lines."""
    prefix = f"[{index} body] "
    return "\n".join(line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix))


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
    # The proxy answers as itself; its upstream's answer is inside, line by line.
    assert answer.headers["x-chaosmesh-workload"] == "nginx"
    assert answer.text.splitlines()[0] == "nginx nginx-1 version=v1"
    assert "[0] Url=http://tomcat-svc:8080/anything/x?q=1&q=2" in answer.text
    assert "[0] ResponseHeader=X-Chaosmesh-Pod:tomcat-0" in answer.text
    seen = json.loads(upstream_body(answer.text))
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
    failed = call(nginx.port, "/status/503")
    assert failed.status == 503 and "\n[0] StatusCode=503\n" in failed.text
    assert "\nStatusCode=503\n" in failed.text  # the proxy's own answer says so too
    teapot = call(nginx.port, "/status/418")
    assert teapot.status == 418 and teapot.headers["x-chaosmesh-workload"] == "nginx"
    # nginx relays the upstream's end-to-end headers, e.g. what Envoy adds on an overflow.
    relayed = call(nginx.port, "/?headers=x-envoy-overloaded:true,retry-after:1&codes=503")
    assert relayed.status == 503 and relayed.headers["x-envoy-overloaded"] == "true"
    assert relayed.headers["retry-after"] == "1"
    head = call(nginx.port, "/", method="HEAD")
    assert head.status == 200 and head.body == b""


def test_dead_upstream_is_502(start_workload: StartWorkload) -> None:
    nginx = start_workload(
        "proxy", deployment="nginx", annotations=UPSTREAM, sidecar=nginx_sidecar(free_port())
    )
    answer = call(nginx.port, "/")
    assert answer.status == 502
    assert "[0] StatusCode=502" in answer.text
    assert re.search(r"\[0 error\] 502 Bad Gateway: .*tomcat-svc:8080", answer.text)


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
    assert "[0 error] 504 Gateway Timeout" in answer.text
    assert "no answer within 0.5s" in answer.text
    assert call(nginx.port, "/").status == 200  # the proxy keeps serving


def test_several_upstreams_in_order_status_from_the_first_failing(
    start_workload: StartWorkload,
) -> None:
    details = start_workload("echo", deployment="details", version="v1", pod="details-0")
    reviews = start_workload("echo", deployment="reviews-v3", version="v3", pod="reviews-v3-0")
    sidecar = Sidecar(
        outbound={9080: (HOST, details.port), 9081: (HOST, reviews.port)},
        workload="productpage",
        namespace="istio-test",
    )
    productpage = start_workload(
        "proxy",
        deployment="productpage",
        pod="productpage-0",
        sidecar=sidecar,
        # Whitespace and newlines around the commas, as a YAML block scalar gives them.
        annotations={
            "chaosmesh.io/upstream": "http://details:9080/details ,\n http://reviews:9081"
        },
    )
    answer = call(productpage.port, "/0?x=1", headers={"Accept-Encoding": "gzip"})
    assert answer.status == 200
    lines = answer.text.splitlines()
    assert lines[0] == "productpage productpage-0 version=v1"
    assert lines.index("[0] Url=http://details:9080/details/0?x=1") < lines.index(
        "[1] Url=http://reviews:9081/0?x=1"
    )
    assert upstream_body(answer.text, 0).startswith("details details-0 version=v1\n")
    assert upstream_body(answer.text, 1).startswith("reviews-v3 reviews-v3-0 version=v3\n")
    assert "URL=/details/0?x=1" in upstream_body(answer.text, 0)
    # The proxy's answer is text it writes: upstreams are not asked to compress theirs.
    assert "Accept-Encoding" not in upstream_body(answer.text, 1)
    # Only reviews fails (details is asked for /details/status/503, which it reflects): the
    # caller gets reviews' status, and sees that details answered.
    failing = call(productpage.port, "/status/503")
    assert failing.status == 503
    assert "[0] StatusCode=200" in failing.text and "[1] StatusCode=503" in failing.text
    reviews.process.terminate()
    reviews.process.wait(10)
    gone = call(productpage.port, "/")
    assert gone.status == 502
    assert "[0] StatusCode=200" in gone.text and "[1] StatusCode=502" in gone.text


def test_nested_proxies_answer_as_themselves_and_show_the_chain(
    start_workload: StartWorkload,
) -> None:
    ratings = start_workload("echo", deployment="ratings", version="v1", pod="ratings-0")
    reviews = start_workload(
        "proxy",
        deployment="reviews-v3",
        version="v3",
        pod="reviews-v3-0",
        annotations={"chaosmesh.io/upstream": "http://ratings:9080"},
        sidecar=Sidecar(outbound={9080: (HOST, ratings.port)}, workload="reviews-v3"),
    )
    productpage = start_workload(
        "proxy",
        deployment="productpage",
        pod="productpage-0",
        annotations={"chaosmesh.io/upstream": "http://reviews:9081"},
        sidecar=Sidecar(outbound={9081: (HOST, reviews.port)}, workload="productpage"),
    )
    answer = call(productpage.port, "/productpage")
    assert answer.status == 200 and answer.headers["x-chaosmesh-version"] == "v1"
    # A split measured through productpage counts productpage, not the deepest service.
    assert re.search(r"(?P<version>v\d+)", answer.text).group(1) == "v1"  # type: ignore[union-attr]
    via_reviews = call(reviews.port, "/")
    assert via_reviews.headers["x-chaosmesh-version"] == "v3"
    assert re.search(r"version=(v\d+)", via_reviews.text).group(1) == "v3"  # type: ignore[union-attr]
    chain = [
        line
        for line in answer.text.splitlines()
        if re.fullmatch(r"(\[0 body\] )*\S+ \S+ version=\S+", line)
    ]
    assert chain == [
        "productpage productpage-0 version=v1",
        "[0 body] reviews-v3 reviews-v3-0 version=v3",
        "[0 body] [0 body] ratings ratings-0 version=v1",
    ]
    assert "[0 body] [0 body] Host=ratings:9080" in answer.text
    assert "[0 body] [0 body] RequestHeader=X-Chaosmesh-Source-Workload:reviews-v3" in answer.text


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
    assert "[0 body] ok" in call(nginx.port, "/").text
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
        answers = [call(nginx.port, "/") for _ in range(5)]
        assert [upstream_body(a.text) for a in answers] == ["once"] * 5
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
    # An upstream that takes the request and never answers: the request is in flight for as
    # long as the test wants, and the upstream says when it has it.
    listener = socket.create_server((HOST, 0))
    listener.settimeout(20)
    received = threading.Event()

    def hold() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(20)
            try:
                if conn.recv(65536).startswith(b"GET /slow "):
                    received.set()
                conn.recv(65536)  # until the proxy hangs up (or 20 s)
            except OSError:
                return

    thread = threading.Thread(target=hold)
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
            assert received.wait(15)  # the request is out, waiting upstream
            nginx.process.terminate()
            assert nginx.process.wait(5) == 0  # not when (if ever) the upstream answers
    finally:
        listener.close()
        thread.join(25)
