"""The probes' settings and failures, over real HTTP, without needing Prometheus installed.

A small loopback server answers like Prometheus' query API (or refuses to, slowly, or with
401) so authentication, timeouts and error messages can be checked exactly.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext.mesh.api import tls
from chaosmesh_ext.prometheus import (
    prometheus_query,
    request_duration_ms,
    request_rate,
    request_success_rate,
)
from chaosmesh_ext.prometheus.results import flatten


def vector(value: str) -> dict[str, Any]:
    """Prometheus' answer for a one-series instant vector."""
    result = [{"metric": {}, "value": [1.0, value]}]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


class FakePrometheus(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[dict[str, Any]] = []
        self.answer: tuple[int, Any] = (200, vector("0.5"))
        self.delay = 0.0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakePrometheus

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.seen.append(
            {"path": parts.path, "query": parse_qs(parts.query), "headers": dict(self.headers)}
        )
        time.sleep(self.server.delay)
        status, body = self.server.answer
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def fake() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bearer_token_is_sent_and_never_shown(fake: FakePrometheus) -> None:
    config = {"prometheus_base_url": fake.url}
    assert (
        prometheus_query("up", configuration=config, secrets={"prometheus_token": "s3cr3t"}) == 0.5
    )
    assert fake.seen[-1]["headers"]["Authorization"] == "Bearer s3cr3t"
    fake.answer = (401, b"Unauthorized")
    with pytest.raises(ActivityFailed) as failure:
        prometheus_query("up", configuration=config, secrets={"prometheus_token": "s3cr3t"})
    assert "HTTP 401" in str(failure.value) and "prometheus_token" in str(failure.value)
    assert "s3cr3t" not in str(failure.value)


def test_basic_auth_from_secrets(fake: FakePrometheus) -> None:
    secrets = {"prometheus_username": "chaos", "prometheus_password": "pw"}
    prometheus_query("up", configuration={"prometheus_base_url": fake.url}, secrets=secrets)
    assert fake.seen[-1]["headers"]["Authorization"] == "Basic Y2hhb3M6cHc="


def test_the_timeout_bounds_the_call_and_is_passed_to_prometheus(fake: FakePrometheus) -> None:
    fake.delay = 3.0
    config = {"prometheus_base_url": fake.url, "prometheus_timeout": 0.5}
    started = time.monotonic()
    with pytest.raises(ActivityFailed, match=r"no answer from .* within 0.5s"):
        prometheus_query("up", configuration=config)
    assert time.monotonic() - started < 2.9  # gave up well before the server answered
    assert fake.seen[-1]["query"]["timeout"] == ["0.5"]


def test_unreachable_prometheus_fails_naming_query_and_address() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ActivityFailed) as failure:
        request_rate("reviews", configuration={"prometheus_base_url": url})
    message = str(failure.value)
    assert "cannot reach" in message and url in message
    assert 'istio_requests_total{reporter="source"' in message


def test_credentials_in_the_url_are_not_repeated_in_errors() -> None:
    url = f"http://admin:hunter2@127.0.0.1:{closed_port()}"
    with pytest.raises(ActivityFailed) as failure:
        prometheus_query("up", configuration={"prometheus_base_url": url})
    assert "hunter2" not in str(failure.value) and "***@127.0.0.1" in str(failure.value)


def test_a_non_prometheus_answer_is_a_clear_failure(fake: FakePrometheus) -> None:
    fake.answer = (200, b"<html>login</html>")
    with pytest.raises(ActivityFailed, match="did not answer Prometheus JSON"):
        prometheus_query("up", configuration={"prometheus_base_url": fake.url})


def test_the_service_probes_send_istio_standard_promql(fake: FakePrometheus) -> None:
    config = {"prometheus_base_url": fake.url}
    request_success_rate("reviews", window="30s", ns="shop", configuration=config)
    query = fake.seen[-1]["query"]["query"][0]
    selector = (
        'reporter="source",destination_service_name="reviews",'
        'destination_service=~"reviews\\\\.shop(\\\\..*)?"'
    )
    assert query == (
        f'(sum(rate(istio_requests_total{{{selector},response_code!~"5.."}}[30s]))'
        f" or on() vector(0)) / sum(rate(istio_requests_total{{{selector}}}[30s]))"
    )
    request_duration_ms("reviews", percentile=95, reporter="destination", configuration=config)
    query = fake.seen[-1]["query"]["query"][0]
    assert query.startswith("histogram_quantile(0.95, sum(rate(")
    assert 'istio_request_duration_milliseconds_bucket{reporter="destination"' in query
    assert query.endswith("[1m])) by (le))")


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: request_success_rate("reviews", window="1 minute", configuration=c), "window"),
        (lambda c: request_success_rate("reviews", reporter="both", configuration=c), "reporter"),
        (lambda c: request_rate("Reviews_svc", configuration=c), "service"),
        (lambda c: request_rate("reviews", ns="", configuration=c), "ns"),
        (lambda c: request_duration_ms("reviews", percentile=0, configuration=c), "percentile"),
        (lambda c: request_duration_ms("reviews", percentile="p99", configuration=c), "percentile"),
        (lambda c: prometheus_query("up", on_no_data="skip", configuration=c), "on_no_data"),
        (lambda c: prometheus_query("  ", configuration=c), "query"),
    ],
)
def test_bad_arguments_fail_naming_the_argument_before_any_request(
    fake: FakePrometheus, call: Any, named: str
) -> None:
    with pytest.raises(ActivityFailed, match=f"'{named}'"):
        call({"prometheus_base_url": fake.url})
    assert fake.seen == []


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({}, "prometheus_base_url"),
        ({"prometheus_base_url": "prometheus:9090"}, "prometheus_base_url"),
        ({"prometheus_base_url": "http://x", "prometheus_timeout": "soon"}, "prometheus_timeout"),
        ({"prometheus_base_url": "http://x", "prometheus_timeout": 0}, "prometheus_timeout"),
    ],
)
def test_bad_configuration_fails_naming_the_key(config: dict[str, Any], named: str) -> None:
    with pytest.raises(ActivityFailed, match=named):
        prometheus_query("up", configuration=config)


def test_flatten_shapes() -> None:
    assert flatten([1.0, "3"]) == 3.0  # scalar
    assert flatten([]) == {}
    vector = [
        {"metric": {"__name__": "x", "code": "200"}, "value": [1, "4"]},
        {"metric": {"__name__": "x", "code": "503"}, "value": [1, "1"]},
    ]
    assert flatten(vector) == {"code=200": 4.0, "code=503": 1.0}
    matrix = [{"metric": {"a": "b"}, "values": [[1, "1"], [2, "2"]]}]
    assert flatten(matrix) == [1.0, 2.0]


def test_nan_is_no_data(fake: FakePrometheus) -> None:
    fake.answer = (200, vector("NaN"))
    with pytest.raises(ActivityFailed, match="no data"):
        request_success_rate("reviews", configuration={"prometheus_base_url": fake.url})


@pytest.fixture
def tls_fake(tmp_path: Path, fake: FakePrometheus) -> Iterator[tuple[str, Path]]:
    """The fake behind TLS with a self-signed certificate for 127.0.0.1 (the mesh API's maker)."""
    made = tls.make(tmp_path / "tls")
    cert, key = made.cert_path, made.key_path
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    fake.socket = context.wrap_socket(fake.socket, server_side=True)
    yield fake.url.replace("http://", "https://"), cert


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_by_default_and_a_ca_file_or_opt_out_is_honoured(
    tls_fake: tuple[str, Path],
) -> None:
    url, cert = tls_fake
    with pytest.raises(ActivityFailed, match=r"TLS: .*CERTIFICATE_VERIFY_FAILED"):
        prometheus_query("up", configuration={"prometheus_base_url": url})
    trusted = {"prometheus_base_url": url, "prometheus_ca_file": str(cert)}
    assert prometheus_query("up", configuration=trusted) == 0.5
    unverified = {"prometheus_base_url": url, "prometheus_verify_ssl": "false"}
    assert prometheus_query("up", configuration=unverified) == 0.5


def test_queries_are_logged_to_the_chaostoolkit_logger(
    fake: FakePrometheus, caplog: pytest.LogCaptureFixture
) -> None:
    config = {"prometheus_base_url": fake.url.replace("http://", "http://user:pw@")}
    with caplog.at_level(logging.INFO, logger="chaostoolkit"):
        request_rate("reviews", ns="bookinfo", configuration=config)
    lines = [r.getMessage() for r in caplog.records if r.name == "chaostoolkit"]
    (asked,) = [line for line in lines if line.startswith("chaosmesh: Prometheus http")]
    assert 'destination_service_name="reviews"' in asked and "pw" not in asked
    assert any(line.endswith("-> 0.5") for line in lines)


def test_an_error_answer_is_read_from_the_response_not_the_message(
    fake: FakePrometheus,
) -> None:
    body = {"status": "error", "errorType": "execution", "error": "query timed out (quoted: 'x')"}
    fake.answer = (422, body)
    with pytest.raises(ActivityFailed) as failure:
        prometheus_query("up", configuration={"prometheus_base_url": fake.url})
    assert "HTTP 422: execution: query timed out (quoted: 'x')" in str(failure.value)
    fake.answer = (503, b"upstream connect error")  # a proxy in front, not Prometheus JSON
    with pytest.raises(ActivityFailed, match="HTTP 503: upstream connect error"):
        prometheus_query("up", configuration={"prometheus_base_url": fake.url})
