"""The seed's scenarios enforced by a real Envoy from translated config (tiny local upstreams)."""

from __future__ import annotations

import http.client
import threading
import time

import pytest

from chaosmesh_ext.mesh.translate import Endpoint, translate
from tests.support import mesh_seed as seed

from .conftest import access_entries, request

pytestmark = pytest.mark.envoy


def test_canary_split_through_the_gateway_and_a_weight_change_on_the_next_request(
    envoy, upstreams, tmp_path
):
    v1, v2 = upstreams("v1"), upstreams("v2")
    snap = seed.snapshot(
        seed.CANARY, seed.canary_endpoints(v1.port, v2.port), access_log_dir=str(tmp_path)
    )
    proc = envoy(translate(snap))
    port = proc.listener_addresses()["gateway_80"][1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    counts = {"v1": 0, "v2": 0}
    for _ in range(1000):
        conn.request("GET", "/", headers={"Host": "192.168.100.10:30508"})
        counts[conn.getresponse().read().decode().strip()] += 1
    # Binomial(1000, 0.1): sd ~9.5, so 100 +- 40 is > 4 sd.
    assert 60 <= counts["v2"] <= 140, counts
    assert counts["v1"] + counts["v2"] == 1000

    routes = snap.virtual_services[0]["spec"]["http"][0]["route"]
    routes[0]["weight"], routes[1]["weight"] = 0, 100
    proc.apply(translate(snap))
    for _ in range(20):  # the very next request on the same keep-alive connection
        conn.request("GET", "/", headers={"Host": "anything"})
        assert conn.getresponse().read().decode().strip() == "v2"
    conn.close()


def test_unknown_host_on_a_sidecar_listener_is_404_nr(envoy, upstreams, tmp_path):
    v1, v2 = upstreams("v1"), upstreams("v2")
    snap = seed.snapshot(
        seed.CANARY, seed.canary_endpoints(v1.port, v2.port), access_log_dir=str(tmp_path)
    )
    proc = envoy(translate(snap))
    port = proc.listener_addresses()["0.0.0.0_80"][1]
    assert request(port, "canary.istio-test")[0] == 200
    assert request(port, "nobody.default.svc.cluster.local")[0] == 404
    assert access_entries(tmp_path, 2)[-1]["response_flags"] == "NR"


def _tomcat(tomcat_port: int) -> list[Endpoint]:
    return [
        Endpoint(
            "tomcat-0", "default", {"server": "tomcat", "app": "web"}, "127.0.0.1", tomcat_port
        )
    ]


def test_abort_fault_answers_503_fault_filter_abort(envoy, upstreams, tmp_path):
    tomcat = upstreams("tomcat")
    snap = seed.snapshot(
        seed.RETRY + "\n---\n" + seed.TIMEOUT.split("---")[1],
        _tomcat(tomcat.port),
        access_log_dir=str(tmp_path),
    )
    proc = envoy(translate(snap))
    port = proc.listener_addresses()["0.0.0.0_8080"][1]
    status, _, body = request(
        port, "tomcat-svc:8080", headers={"x-chaosmesh-source-workload": "nginx"}
    )
    assert (status, body) == (503, "fault filter abort")
    assert tomcat.hits == 0
    (entry,) = access_entries(tmp_path, 1)
    assert entry["response_flags"] == "FI"
    assert entry["source_workload"] == "nginx"
    assert entry["listener"] == "0.0.0.0_8080"


def test_delay_on_tomcat_and_timeout_on_nginx_gives_504_before_the_delay_ends(
    envoy, upstreams, tmp_path
):
    # The seed's 10 s delay / 2 s timeout, scaled down: 1 s delay, 0.2 s timeout.
    text = seed.TIMEOUT.replace("fixedDelay: 10s", "fixedDelay: 1s").replace(
        "timeout: 2s", "timeout: 0.2s"
    )
    nginx = upstreams("nginx")
    snap = seed.snapshot(
        text,
        [Endpoint("nginx-0", "default", {"server": "nginx"}, "127.0.0.1", nginx.port)],
        access_log_dir=str(tmp_path),
    )
    proc = envoy(translate(snap))
    port = proc.listener_addresses()["0.0.0.0_80"][1]
    # nginx's upstream takes longer than the route timeout, as when it waits on tomcat.
    started = time.monotonic()
    status, _, body = request(port, "nginx-svc", "/delay/1")
    elapsed = time.monotonic() - started
    assert (status, body) == (504, "upstream request timeout")
    assert elapsed < 1.0  # answered by the timeout, not by the slow upstream
    # tomcat's route: the delay fault holds the request, then it is served.
    tomcat = upstreams("tomcat")
    snap.endpoints.append(_tomcat(tomcat.port)[0])
    proc.apply(translate(snap))
    port_8080 = proc.listener_addresses()["0.0.0.0_8080"][1]
    assert request(port_8080, "tomcat-svc:8080")[0] == 200
    assert tomcat.hits == 1  # delayed, then served: a fault delay is not a timeout
    nginx_entry, tomcat_entry = access_entries(tmp_path, 2)
    assert (nginx_entry["response_code"], nginx_entry["response_flags"]) == (504, "UT")
    assert (tomcat_entry["response_code"], tomcat_entry["response_flags"]) == (200, "DI")


def test_breaker_overflow_503_with_x_envoy_overloaded_and_pending_overflow_stat(
    envoy, upstreams, tmp_path
):
    httpbin = upstreams("httpbin")
    ep = Endpoint(
        "httpbin-0", "default", {"app": "httpbin", "version": "v1"}, "127.0.0.1", httpbin.port
    )
    proc = envoy(translate(seed.snapshot(seed.BREAKER, [ep], access_log_dir=str(tmp_path))))
    port = proc.listener_addresses()["0.0.0.0_8000"][1]
    results: list[tuple[int, dict[str, str]]] = []
    lock = threading.Lock()

    def call() -> None:
        status, headers, _ = request(port, "httpbin:8000", "/delay/0.5")
        with lock:
            results.append((status, headers))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    statuses = sorted(s for s, _ in results)
    assert 200 in statuses and 503 in statuses, statuses
    assert all(h.get("x-envoy-overloaded") == "true" for s, h in results if s == 503)
    # alt_stat_name "<cluster>;" names the stats, as on a real sidecar (Istio docs show the same).
    name = "cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_pending_overflow"
    assert int(proc.stat(name) or 0) >= 1
    assert "UO" in {e["response_flags"] for e in access_entries(tmp_path, 6)}


@pytest.mark.parametrize(("retry_on", "attempts"), [(None, 1), ("5xx", 4)])
def test_503_is_retried_only_when_retry_on_names_it(envoy, upstreams, tmp_path, retry_on, attempts):
    tomcat = upstreams("tomcat")
    retries = {"attempts": 3, "perTryTimeout": "2s"}
    if retry_on:
        retries["retryOn"] = retry_on
    snap = seed.snapshot(seed.TIMEOUT, _tomcat(tomcat.port), access_log_dir=str(tmp_path))
    tomcat_vs = next(v for v in snap.virtual_services if v["metadata"]["name"] == "tomcat-vs")
    tomcat_vs["spec"]["http"] = [
        {"route": [{"destination": {"host": "tomcat-svc"}}], "retries": retries}
    ]
    proc = envoy(translate(snap))
    port = proc.listener_addresses()["0.0.0.0_8080"][1]
    assert request(port, "tomcat-svc:8080", "/status/503")[0] == 503
    assert tomcat.hits == attempts
    (entry,) = access_entries(tmp_path, 1)
    assert entry["attempts"] == attempts
    assert entry["upstream_cluster"] == "outbound|8080||tomcat-svc.default.svc.cluster.local"
    if attempts > 1:
        assert "URX" in entry["response_flags"]


def test_identity_headers_never_reach_the_upstream(envoy, upstreams, tmp_path):
    tomcat = upstreams("tomcat")
    snap = seed.snapshot(seed.TIMEOUT.split("---")[1], _tomcat(tomcat.port))
    proc = envoy(translate(snap))
    port = proc.listener_addresses()["0.0.0.0_8080"][1]
    request(
        port,
        "tomcat-svc:8080",
        headers={
            "x-chaosmesh-source-workload": "fortio",
            "x-chaosmesh-src-label-app": "web",
            "x-keep": "1",
        },
    )
    (seen,) = tomcat.seen_headers
    assert seen["x-keep"] == "1"
    assert not [k for k in seen if k.startswith("x-chaosmesh-")]


def test_source_labels_route_only_the_matching_caller(envoy, upstreams, tmp_path):
    tomcat = upstreams("tomcat")
    snap = seed.snapshot(seed.TIMEOUT.split("---")[1], _tomcat(tomcat.port))
    snap.virtual_services = [
        {
            "kind": "VirtualService",
            "metadata": {"name": "t", "namespace": "default"},
            "spec": {
                "hosts": ["tomcat-svc"],
                "http": [
                    {
                        "match": [{"sourceLabels": {"app": "fortio"}}],
                        "fault": {"abort": {"httpStatus": 418, "percentage": {"value": 100}}},
                        "route": [{"destination": {"host": "tomcat-svc"}}],
                    },
                    {"route": [{"destination": {"host": "tomcat-svc"}}]},
                ],
            },
        }
    ]
    proc = envoy(translate(snap))
    port = proc.listener_addresses()["0.0.0.0_8080"][1]
    assert (
        request(port, "tomcat-svc:8080", headers={"x-chaosmesh-src-label-app": "fortio"})[0] == 418
    )
    assert (
        request(port, "tomcat-svc:8080", headers={"x-chaosmesh-src-label-app": "nginx"})[0] == 200
    )
    assert request(port, "tomcat-svc:8080")[0] == 200


def _wait_ejected(admin_url: str, timeout: float = 5.0) -> None:
    host, port = admin_url.removeprefix("http://").rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            conn.request("GET", "/stats?filter=outlier_detection.ejections_active$")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        if any(line.endswith(": 1") for line in text.splitlines()):
            return
        assert time.monotonic() < deadline, f"no host ejected within {timeout} s: {text}"
        time.sleep(0.01)


@pytest.mark.parametrize(("max_ejection", "after"), [("maxEjectionPercent: 100", 503), ("", 200)])
def test_outlier_ejection_needs_max_ejection_percent_with_one_host(
    envoy, upstreams, tmp_path, max_ejection, after
):
    httpbin = upstreams("httpbin")
    ep = Endpoint("httpbin-0", "default", {"app": "httpbin"}, "127.0.0.1", httpbin.port)
    text = seed.BREAKER.replace("maxEjectionPercent: 100", max_ejection)
    proc = envoy(translate(seed.snapshot(text, [ep], access_log_dir=str(tmp_path))))
    port = proc.listener_addresses()["0.0.0.0_8000"][1]
    assert request(port, "httpbin:8000", "/status/502")[0] == 502  # one gateway error
    if after == 503:
        # Envoy ejects on its main thread, after the worker that saw the 502 reports it: a
        # request racing that report would still reach the host. Wait for the ejection.
        _wait_ejected(proc.admin_url)
    status, _, body = request(port, "httpbin:8000")
    assert status == after
    if after == 503:
        # consecutiveGatewayErrors: 1 ejected the only host for baseEjectionTime (3m).
        assert body == "no healthy upstream"
        assert access_entries(tmp_path, 2)[-1]["response_flags"] == "UH"
    else:
        # Envoy's default max_ejection_percent (10 %) of one host is zero hosts: no ejection.
        assert body == "httpbin\n"


def test_gateway_serves_only_the_intersection_of_hosts(envoy, upstreams, tmp_path):
    v1, v2 = upstreams("v1"), upstreams("v2")
    snap = seed.snapshot(
        seed.CANARY, seed.canary_endpoints(v1.port, v2.port), access_log_dir=str(tmp_path)
    )
    snap.gateways[0]["spec"]["servers"][0]["hosts"] = ["*.example.com"]
    snap.virtual_services[0]["spec"]["hosts"] = ["shop.example.com", "shop.example.org"]
    proc = envoy(translate(snap))
    port = proc.listener_addresses()["gateway_80"][1]
    assert request(port, "shop.example.com")[0] == 200
    assert request(port, "shop.example.org")[0] == 404
    assert access_entries(tmp_path, 2)[-1]["response_flags"] == "NR"
