"""Istio's own sample YAML, applied as Istio's traffic-management task pages apply it, behaves
as those pages say: Bookinfo (``samples/bookinfo``) and httpbin (``samples/httpbin``), kept
verbatim from Istio 1.31 in ``tests/support/istio_upstream``.

A real ``chaosmesh mesh up`` (Envoy, the API, the workloads: Bookinfo's images run as echo
workloads that say their version, httpbin as httpbin), ``kubectl apply -f`` for the changes.
"""

from __future__ import annotations

import http.client
import socket
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import Mesh, envoy_listener_port

pytestmark = pytest.mark.envoy

SAMPLES = Path(__file__).resolve().parents[2] / "support" / "istio_upstream" / "samples"
BOOKINFO = SAMPLES / "bookinfo"
NETWORKING = BOOKINFO / "networking"


def _get(
    mesh: Mesh, service: str, path: str = "/", headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], str]:  # fmt: skip
    """A GET through the mesh's outbound listener for ``service`` (what a caller outside the
    mesh's workloads sends: no identity headers)."""
    entry = mesh.service(service)
    split = urlsplit(entry["url"])
    conn = http.client.HTTPConnection("127.0.0.1", split.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": entry["host_header"], **(headers or {})})
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def _versions(mesh: Mesh, service: str, count: int, **headers: str) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(count):
        status, answer, _ = _get(mesh, service, headers=headers)
        assert status == 200
        seen[answer.get("x-chaosmesh-version", "?")] += 1
    return seen


def _apply(mesh: Mesh, name: str) -> str:
    """``kubectl apply -f samples/bookinfo/networking/<name>.yaml``; its stderr (warnings)."""
    return mesh.kubectl("apply", "-f", str(NETWORKING / f"{name}.yaml")).stderr


@pytest.fixture
def bookinfo(mesh_up) -> Mesh:
    text = (BOOKINFO / "platform" / "kube" / "bookinfo.yaml").read_text()
    return mesh_up([], extra={"bookinfo.yaml": text})


def test_request_routing_task(bookinfo: Mesh):
    """istio.io tasks/traffic-management/request-routing: all traffic to v1, then jason to
    v2 with virtual-service-reviews-test-v2.yaml."""
    # No rules: Istio's default LEAST_REQUEST picks among the three versions' endpoints at
    # random when none is busy, so a version is missed in n calls with probability
    # 3 * (2/3)**n: 2 % for 12 calls (seen once), 3e-7 for 40.
    assert set(_versions(bookinfo, "reviews", 40)) == {"v1", "v2", "v3"}
    _apply(bookinfo, "destination-rule-all")
    _apply(bookinfo, "virtual-service-all-v1")
    assert _versions(bookinfo, "reviews", 10) == {"v1": 10}
    _apply(bookinfo, "virtual-service-reviews-test-v2")
    assert _versions(bookinfo, "reviews", 5, **{"end-user": "jason"}) == {"v2": 5}
    assert _versions(bookinfo, "reviews", 5, **{"end-user": "someone"}) == {"v1": 5}


def test_fault_injection_task(bookinfo: Mesh):
    """tasks/traffic-management/fault-injection: jason's ratings requests abort with 500, or
    are held 7 s (a 1 s client gives up first); everyone else is served at once."""
    _apply(bookinfo, "destination-rule-all")
    _apply(bookinfo, "virtual-service-ratings-test-abort")
    status, _, body = _get(bookinfo, "ratings", headers={"end-user": "jason"})
    assert (status, body) == (500, "fault filter abort")
    assert _get(bookinfo, "ratings")[0] == 200
    _apply(bookinfo, "virtual-service-ratings-test-delay")
    with pytest.raises((TimeoutError, socket.timeout)):
        _get(bookinfo, "ratings", headers={"end-user": "jason"}, timeout=1.0)
    assert _get(bookinfo, "ratings", timeout=5.0)[0] == 200


def test_traffic_shifting_task(bookinfo: Mesh):
    """tasks/traffic-management/traffic-shifting: 50 % to v3, then all of it."""
    _apply(bookinfo, "destination-rule-all")
    _apply(bookinfo, "virtual-service-reviews-50-v3")
    seen = _versions(bookinfo, "reviews", 100)
    assert set(seen) == {"v1", "v3"}
    assert 25 <= seen["v3"] <= 75  # Binomial(100, 0.5): 5 standard deviations either side
    _apply(bookinfo, "virtual-service-reviews-v3")
    assert _versions(bookinfo, "reviews", 10) == {"v3": 10}


def test_mutual_tls_rules_apply_with_a_warning_and_route_as_before(bookinfo: Mesh):
    """destination-rule-all-mtls.yaml: accepted; kubectl prints the embedded mesh's Warning:
    header for tls (docs/FIDELITY.md: no effect on one machine); routing unchanged."""
    stderr = _apply(bookinfo, "destination-rule-all-mtls")
    assert (
        "Warning: spec.trafficPolicy.tls: no effect on the embedded mesh: mutual TLS between "
        "sidecars is invisible to requests"
    ) in stderr
    _apply(bookinfo, "virtual-service-all-v1")
    assert _versions(bookinfo, "reviews", 5) == {"v1": 5}


def test_ingress_gateway_for_bookinfo(bookinfo: Mesh):
    """bookinfo-gateway.yaml: /productpage through the gateway reaches productpage; a path
    no route names gets 404 (getting-started: curl http://$GATEWAY_URL/productpage)."""
    stderr = _apply(bookinfo, "bookinfo-gateway")
    assert "Warning: spec.selector: no effect on the embedded mesh" in stderr
    status = bookinfo.kubectl("get", "gateway", "bookinfo-gateway", "-o", "name")
    assert status.stdout.strip() == "gateway.networking.istio.io/bookinfo-gateway"
    port = envoy_listener_port(bookinfo, "gateway_8080")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/productpage", headers={"Host": "bookinfo.example.com"})
    response = conn.getresponse()
    response.read()
    assert (response.status, response.getheader("x-chaosmesh-version")) == (200, "v1")
    conn.request("GET", "/nowhere", headers={"Host": "bookinfo.example.com"})
    response = conn.getresponse()
    response.read()
    assert response.status == 404
    conn.close()


def test_httpbin_behind_its_gateway(mesh_up):
    """samples/httpbin (httpbin.yaml + httpbin-gateway.yaml) as the ingress task uses them:
    curl -s -I http://$INGRESS_HOST:$INGRESS_PORT/status/200 and /headers."""
    mesh = mesh_up(
        [],
        extra={
            "httpbin.yaml": (SAMPLES / "httpbin" / "httpbin.yaml").read_text(),
            "httpbin-gateway.yaml": (SAMPLES / "httpbin" / "httpbin-gateway.yaml").read_text(),
        },
    )
    port = envoy_listener_port(mesh, "gateway_80")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for path, status in (("/status/200", 200), ("/status/418", 418), ("/headers", 200)):
        conn.request("GET", path, headers={"Host": "httpbin.example.com"})
        response = conn.getresponse()
        response.read()
        assert response.status == status, path
    conn.close()
