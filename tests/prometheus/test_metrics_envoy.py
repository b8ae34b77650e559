"""End to end through a real Envoy: Istio YAML with an injected fault -> the translator ->
Envoy's access.jsonl -> the exporter -> a real Prometheus -> the probes.

The mesh daemon is stood in for by this test (it writes mesh.json and starts Envoy with the
translator's output), so the metrics pipeline is exercised on what Envoy really logs.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.mesh.envoy import EnvoyProcess
from chaosmesh_ext.mesh.metrics import start_exporter
from chaosmesh_ext.mesh.prometheus_server import PrometheusServer, start_prometheus
from chaosmesh_ext.mesh.translate import Endpoint, MeshSnapshot, translate
from chaosmesh_ext.prometheus import prometheus_query, request_duration_ms, request_success_rate
from tests.support.metrics_helpers import wait_for
from tests.support.tools import require_tool

pytestmark = [pytest.mark.envoy, pytest.mark.slow]

CALLER = Sidecar(workload="productpage-v1", namespace="default", labels={"app": "productpage"})


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 9080}]},
    }


def faulty_route(name: str, fault: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "hosts": [name],
            "http": [{"fault": fault, "route": [{"destination": {"host": name}}]}],
        },
    }


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACKs add 40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, int]]:
    """One local HTTP server per workload (reviews-v1, ratings-v1): name -> port."""
    servers = {name: ThreadingHTTPServer(("127.0.0.1", 0), _Ok) for name in ("reviews", "ratings")}
    threads = []
    for server in servers.values():
        server.daemon_threads = True
        threads.append(threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}))
        threads[-1].start()
    try:
        yield {name: int(server.server_address[1]) for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(5)


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, int]
) -> Iterator[tuple[tuple[str, int], PrometheusServer]]:
    """Envoy with reviews (20 % abort) and ratings (100 ms delay), scraped by Prometheus."""
    require_tool("prometheus")
    state = tmp_path_factory.mktemp("envoy-metrics")
    abort = {"abort": {"percentage": {"value": 20}, "httpStatus": 503}}
    delay = {"delay": {"percentage": {"value": 100}, "fixedDelay": "100ms"}}
    endpoints = [
        Endpoint(f"{name}-v1-0", "default", {"app": name, "version": "v1"}, "127.0.0.1", port)
        for name, port in upstreams.items()
    ]
    snapshot = MeshSnapshot(
        services=[service("reviews"), service("ratings")],
        virtual_services=[faulty_route("reviews", abort), faulty_route("ratings", delay)],
        endpoints=endpoints,
        access_log_dir=str(state),
    )
    # What the daemon would write: the exporter resolves upstream hosts through it.
    mesh_state = {
        "endpoints": [
            {"pod": e.pod, "namespace": e.namespace, "workload": e.pod.rsplit("-", 1)[0],
             "labels": dict(e.labels), "address": e.address, "port": e.port}
            for e in endpoints
        ]
    }  # fmt: skip
    (state / "mesh.json").write_text(json.dumps(mesh_state))
    envoy = EnvoyProcess(state)
    envoy.start(translate(snapshot))
    try:
        exporter = start_exporter(state)
        try:
            prometheus = start_prometheus(state, [exporter.url], interval="250ms")
            try:
                yield envoy.listener_addresses()["0.0.0.0_9080"], prometheus
            finally:
                prometheus.stop()
        finally:
            exporter.stop()
    finally:
        envoy.stop()


def call(listener: tuple[str, int], host: str, count: int) -> Counter[int]:
    """``count`` GETs to http://<host>:9080/ through the outbound listener, as productpage."""
    codes: Counter[int] = Counter()
    connection = http.client.HTTPConnection(*listener, timeout=5)
    headers = {"Host": f"{host}:9080", **CALLER.identity_headers()}
    try:
        for _ in range(count):
            try:
                connection.request("GET", "/", headers=headers)
                response = connection.getresponse()
                response.read()
                codes[response.status] += 1
            except (OSError, http.client.HTTPException):
                connection.close()
                codes[-1] += 1
    finally:
        connection.close()
    return codes


def prometheus_total(prometheus: PrometheusServer, service_name: str) -> float:
    query = (
        f'sum(istio_requests_total{{reporter="source",destination_service_name="{service_name}"}})'
    )
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def load(
    mesh: tuple[tuple[str, int], PrometheusServer], host: str, seed_until: set[int]
) -> Counter[int]:
    """Seed until every code in ``seed_until`` was seen and scraped, then 4 timed batches."""
    listener, prometheus = mesh
    codes: Counter[int] = Counter()
    for _ in range(200):
        codes += call(listener, host, 5)
        if seed_until <= set(codes):
            break
    sent = sum(codes.values())
    wait_for(lambda: prometheus_total(prometheus, host) == sent, 20, f"{sent} seed calls scraped")
    measured: Counter[int] = Counter()
    for _ in range(4):
        measured += call(listener, host, 250 if host == "reviews" else 10)
        time.sleep(0.6)
    sent += sum(measured.values())
    wait_for(lambda: prometheus_total(prometheus, host) == sent, 20, f"{sent} calls scraped")
    return measured


def test_an_injected_20_percent_abort_reads_about_0_8_source_reported(
    mesh: tuple[tuple[str, int], PrometheusServer],
) -> None:
    measured = load(mesh, "reviews", {200, 503})
    config = {"prometheus_base_url": mesh[1].url}
    client_view = measured[200] / sum(measured.values())
    rate = request_success_rate("reviews", configuration=config)
    assert rate == pytest.approx(client_view, abs=0.02)  # Prometheus agrees with the client
    # The band, derived: each of the n = 1000 measured calls is aborted independently with
    # p = 0.2 (Envoy's fault filter draws per request), so the served share has
    # sigma = sqrt(0.8 * 0.2 / 1000) = 0.0126; +-4 sigma (0.05) fails about once in 16 000
    # runs, while a 10 % or 30 % abort (a percentage mistranslated) lands 5 sigma outside.
    assert sum(measured.values()) == 1000
    assert client_view == pytest.approx(0.8, abs=4 * (0.8 * 0.2 / 1000) ** 0.5)
    assert rate == pytest.approx(0.8, abs=4 * (0.8 * 0.2 / 1000) ** 0.5 + 0.02)
    assert request_success_rate("reviews", reporter="destination", configuration=config) == 1.0
    # Aborted calls belong to the service but to no workload; served ones to reviews-v1.
    labelled = prometheus_query(
        "sum by (response_code, response_flags, destination_workload, destination_version) ("
        'istio_requests_total{reporter="source",destination_service_name="reviews"})',
        configuration=config,
    )
    assert set(labelled) == {
        "destination_version=unknown,destination_workload=unknown,response_code=503,"
        "response_flags=FI",
        "destination_version=v1,destination_workload=reviews-v1,response_code=200,response_flags=-",
    }


def test_an_injected_100ms_delay_reads_p99_at_least_100ms(
    mesh: tuple[tuple[str, int], PrometheusServer],
) -> None:
    load(mesh, "ratings", {200})
    config = {"prometheus_base_url": mesh[1].url}
    assert (request_duration_ms("ratings", configuration=config) or 0) >= 100
