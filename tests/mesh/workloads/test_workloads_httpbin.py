"""The httpbin workload is the real httpbin application, served with keep-alive, as its own
process and in a replica host."""

from __future__ import annotations

import http.client
import json
import time

from .conftest import HOST, StartWorkload, call

# Each test runs with replicas as processes of their own and in shared replica hosts.
REPLICA_HOSTS_TOO = True


def test_httpbin_endpoints(start_workload: StartWorkload) -> None:
    httpbin = start_workload("httpbin", deployment="httpbin")
    conn = http.client.HTTPConnection(HOST, httpbin.port, timeout=15)
    try:
        got = call(httpbin.port, "/get?show_env=0&a=1", headers={"end-user": "jason"}, conn=conn)
        sock = conn.sock
        assert got.status == 200
        body = json.loads(got.body)
        assert body["args"] == {"a": "1", "show_env": "0"}
        assert body["headers"]["End-User"] == "jason"
        assert call(httpbin.port, "/status/503", conn=conn).status == 503
        headers = json.loads(call(httpbin.port, "/headers", headers={"x-a": "b"}, conn=conn).body)
        assert headers["headers"]["X-A"] == "b"
        started = time.monotonic()
        delayed = call(httpbin.port, "/delay/1", conn=conn)
        assert delayed.status == 200 and time.monotonic() - started >= 1.0
        assert conn.sock is sock  # every request above on one keep-alive connection
    finally:
        conn.close()


def test_httpbin_sigterm_exits_promptly(start_workload: StartWorkload) -> None:
    httpbin = start_workload("httpbin", deployment="httpbin")
    conn = http.client.HTTPConnection(HOST, httpbin.port, timeout=15)
    try:
        conn.request("GET", "/delay/10")
        time.sleep(0.2)
        httpbin.process.terminate()
        assert httpbin.process.wait(5) == 0  # not after the 10 s delay
    finally:
        conn.close()
