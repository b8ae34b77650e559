"""The echo workload over real HTTP: who answered and what it saw (Istio's echo app fields),
Istio's echo query controls, httpbin-style faults, HTTP/1.1 manners."""

from __future__ import annotations

import http.client
import json
import re
import socket
import time

import pytest

from chaosmesh_ext.mesh.workloads.echo import go_duration

from .conftest import HOST, StartWorkload, call

# Each test runs with replicas as processes of their own and in shared replica hosts.
REPLICA_HOSTS_TOO = True


def test_identity_in_body_and_headers(start_workload: StartWorkload) -> None:
    echo = start_workload("echo", deployment="appv2", version="v2", pod="appv2-0")
    answer = call(echo.port, "/")
    assert answer.status == 200
    assert answer.text.splitlines()[0] == "appv2 appv2-0 version=v2"
    assert answer.headers["x-chaosmesh-workload"] == "appv2"
    assert answer.headers["x-chaosmesh-version"] == "v2"
    assert answer.headers["x-chaosmesh-pod"] == "appv2-0"
    as_json = json.loads(call(echo.port, "/", headers={"Accept": "application/json"}).body)
    assert as_json["deployment"] == "appv2" and as_json["version"] == "v2"
    assert as_json["pod"] == "appv2-0" and as_json["namespace"] == "istio-test"
    shown = json.loads(call(echo.port, "/json?a=1", headers={"end-user": "jason"}).body)
    assert shown["pod"] == "appv2-0" and shown["url"] == "/json?a=1"
    assert shown["headers"]["End-User"] == "jason" and shown["proto"] == "HTTP/1.1"


def test_every_path_reflects_the_request_as_istios_echo_app(
    start_workload: StartWorkload,
) -> None:
    # istio/istio pkg/test/echo/server/endpoint/http.go addResponsePayload: Field=value lines,
    # headers Go-canonicalised and sorted, each value on its own line, Host on its own field.
    echo = start_workload("echo", deployment="reviews-v2", version="v2", pod="reviews-v2-0")
    with socket.create_connection((HOST, echo.port), timeout=10) as sock:
        sock.sendall(
            b"DELETE /api/v1/items/7?x=1&x=2 HTTP/1.1\r\nHost: reviews:9080\r\n"
            b"end-user: jason\r\nX-B3-TRACEID: abc\r\nx-multi: a\r\nX-Multi: b\r\n"
            b"Connection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body.decode().splitlines() == [
        "reviews-v2 reviews-v2-0 version=v2",
        "ServiceVersion=v2",
        "Host=reviews:9080",
        "URL=/api/v1/items/7?x=1&x=2",
        "Method=DELETE",
        "Proto=HTTP/1.1",
        "IP=127.0.0.1",
        "RequestHeader=Connection:close",
        "RequestHeader=End-User:jason",
        "RequestHeader=X-B3-Traceid:abc",
        "RequestHeader=X-Multi:a",
        "RequestHeader=X-Multi:b",
        "Hostname=reviews-v2-0",
        "StatusCode=200",
    ]
    # HTTP/1.0 is reported as such (Envoy speaks HTTP/1.1 to workloads, a curl -0 would not).
    with socket.create_connection((HOST, echo.port), timeout=10) as sock:
        sock.sendall(b"GET /x HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert "\nProto=HTTP/1.0\n" in data.decode() and "\nHost=\n" in data.decode()


def test_the_version_classifiers_count_the_identity_line(start_workload: StartWorkload) -> None:
    # traffic_split's default regex and the experiments' own find the version on line one.
    echo = start_workload("echo", deployment="canary", version="v2", pod="canary-0")
    body = call(echo.port, "/v7/path?v=v1", headers={"x-version": "v6"}).text
    later = body.split("\n", 1)[1]
    assert "v7" in later and "v1" in later and "v6" in later  # the echo fields hold some too
    for regex in (r"(?P<version>v\d+)", r"version=(v\d+)", r"(v1|v2)"):
        found = re.search(regex, body)
        assert found is not None and found.group(1) == "v2", regex


def test_istio_echo_query_controls(start_workload: StartWorkload) -> None:
    echo = start_workload("echo")
    failed = call(echo.port, "/any?codes=503")
    assert failed.status == 503 and "\nStatusCode=503\n" in failed.text
    assert {call(echo.port, "/?codes=200:0,504:1").status for _ in range(10)} == {504}
    seen = {call(echo.port, "/p?codes=200:1,503:1").status for _ in range(60)}
    assert seen == {200, 503}
    bad = call(echo.port, "/?codes=abc")
    assert bad.status == 400 and "codes error: Invalid status code 'abc'" in bad.text
    with_headers = call(echo.port, "/?headers=x-a:1,X-B:two")
    assert with_headers.headers["x-a"] == "1" and with_headers.headers["X-B"] == "two"
    started = time.monotonic()
    assert call(echo.port, "/?delay=300ms").status == 200
    assert time.monotonic() - started >= 0.3
    late = call(echo.port, "/?delay=soon")
    assert late.status == 200 and "error delaying response error" in late.text
    assert late.text.startswith("appv1 ")  # the identity line stays first


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300ms", 0.3), ("1.5s", 1.5), ("1m30s", 90.0), ("2h", 7200.0), ("0", 0.0), ("10us", 1e-5)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1.5 s", "s", "1x", ".s"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        go_duration(text)


def test_status_single_list_and_bad(start_workload: StartWorkload) -> None:
    echo = start_workload("echo")
    assert call(echo.port, "/status/503").status == 503
    assert call(echo.port, "/status/418").status == 418
    seen = {call(echo.port, "/status/200,503").status for _ in range(60)}
    assert seen == {200, 503}  # httpbin picks at random from the list
    assert {call(echo.port, "/status/200:0,504:1").status for _ in range(10)} == {504}
    bad = call(echo.port, "/status/abc")
    assert bad.status == 400 and "Invalid status code" in bad.text


def test_delay_waits_and_answers_like_get(start_workload: StartWorkload) -> None:
    echo = start_workload("echo")
    started = time.monotonic()
    answer = call(echo.port, "/delay/0.4?x=1")
    assert time.monotonic() - started >= 0.4
    assert answer.status == 200
    assert json.loads(answer.body)["args"] == {"x": "1"}
    assert call(echo.port, "/delay/soon").status == 400
    assert call(echo.port, "/delay/nan").status == 400


def test_headers_get_and_anything_as_httpbin(start_workload: StartWorkload) -> None:
    echo = start_workload("echo")
    headers = json.loads(call(echo.port, "/headers", headers={"end-user": "jason"}).body)
    assert headers["headers"]["End-User"] == "jason"
    got = json.loads(call(echo.port, "/get?a=1&a=2&b=x").body)
    assert got["args"] == {"a": ["1", "2"], "b": "x"}
    assert got["url"] == f"http://{HOST}:{echo.port}/get?a=1&a=2&b=x"
    anything = json.loads(call(echo.port, "/anything/x", method="PUT", body=b"payload").body)
    assert anything["method"] == "PUT" and anything["data"] == "payload"
    assert call(echo.port, "/healthz").text == "ok\n"


def test_keep_alive_head_and_chunked_body(start_workload: StartWorkload) -> None:
    echo = start_workload("echo", deployment="canary")
    conn = http.client.HTTPConnection(HOST, echo.port, timeout=10)
    try:
        first = call(echo.port, "/", conn=conn)
        sock = conn.sock
        head = call(echo.port, "/", method="HEAD", conn=conn)
        # A chunked request body (no Content-Length) must be read, not left on the wire.
        conn.request(
            "POST",
            "/anything",
            body=iter([b"hel", b"lo"]),
            encode_chunked=True,
            headers={"Transfer-Encoding": "chunked"},
        )
        chunked = conn.getresponse().read()
        after = call(echo.port, "/", conn=conn)
        assert conn.sock is sock  # all four on one connection
    finally:
        conn.close()
    assert head.status == 200 and head.body == b""
    # The length of the body HEAD would reflect: "Method=HEAD" is one byte longer than "GET".
    assert int(head.headers["Content-Length"]) == len(first.body) + 1
    assert json.loads(chunked)["data"] == "hello"
    assert after.body == first.body


def test_pipelined_requests_answered_in_order(start_workload: StartWorkload) -> None:
    echo = start_workload("echo")
    with socket.create_connection((HOST, echo.port), timeout=10) as sock:
        sock.sendall(
            b"GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /status/202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.index(b"HTTP/1.1 201") < data.index(b"HTTP/1.1 202")
    assert b"Connection: close" in data


def test_malformed_request_gets_400(start_workload: StartWorkload) -> None:
    echo = start_workload("echo")
    with socket.create_connection((HOST, echo.port), timeout=10) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    assert call(echo.port, "/").status == 200  # and the server still serves


def test_sigterm_exits_promptly_with_a_request_in_flight(start_workload: StartWorkload) -> None:
    echo = start_workload("echo")
    with socket.create_connection((HOST, echo.port), timeout=10) as sock:
        sock.sendall(b"GET /delay/10 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        echo.process.terminate()
        assert echo.process.wait(5) == 0  # not after the 10 s delay
    assert "stopping" in echo.log()


def test_expect_100_continue_and_http10(start_workload: StartWorkload) -> None:
    echo = start_workload("echo")
    with socket.create_connection((HOST, echo.port), timeout=10) as sock:
        sock.sendall(
            b"PUT /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")  # go ahead, says the server
        sock.sendall(b"hello")
        data = b""
        while b'"data": "hello"' not in data and (chunk := sock.recv(65536)):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200")
    with socket.create_connection((HOST, echo.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0 without keep-alive: closed after
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data
