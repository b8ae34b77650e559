"""The echo workload over real HTTP: who answered, httpbin-style faults, HTTP/1.1 manners."""

from __future__ import annotations

import http.client
import json
import socket
import time

from .conftest import HOST, StartWorkload, call


def test_identity_in_body_and_headers(start_workload: StartWorkload) -> None:
    echo = start_workload("echo", deployment="appv2", version="v2", pod="appv2-0")
    answer = call(echo.port, "/")
    assert answer.status == 200
    assert answer.text == "appv2 appv2-0 version=v2\n"
    assert answer.headers["x-chaosmesh-workload"] == "appv2"
    assert answer.headers["x-chaosmesh-version"] == "v2"
    assert answer.headers["x-chaosmesh-pod"] == "appv2-0"
    as_json = json.loads(call(echo.port, "/", headers={"Accept": "application/json"}).body)
    assert as_json["deployment"] == "appv2" and as_json["version"] == "v2"
    assert as_json["pod"] == "appv2-0" and as_json["namespace"] == "istio-test"
    assert json.loads(call(echo.port, "/json").body)["pod"] == "appv2-0"


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
    assert head.headers["Content-Length"] == first.headers["Content-Length"]
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
