"""The traffic istiod's rules decide, through a real Envoy programmed by the translator.

Each test states the rule and the istiod function (istio/istio release-1.31) it comes from;
``tests/mesh_translate/test_translate_istiod_rules.py`` pins the exact Envoy JSON.
"""

from __future__ import annotations

import threading

import pytest

from chaosmesh_ext._sidecar import SOURCE_NAMESPACE_HEADER, label_header
from chaosmesh_ext.mesh.api import tls
from chaosmesh_ext.mesh.translate import Endpoint, translate
from tests.support import istiod_cases as cases
from tests.support import mesh_seed as seed
from tests.support.https_client import https_get, tls_secret

from .conftest import access_entries, request

pytestmark = pytest.mark.envoy


def _identity(namespace: str, **labels: str) -> dict[str, str]:
    """The headers a workload's sidecar sends (chaosmesh_ext._sidecar)."""
    return {SOURCE_NAMESPACE_HEADER: namespace} | {label_header(k): v for k, v in labels.items()}


def _bookinfo_upstreams(upstreams) -> tuple[dict, list[Endpoint]]:
    servers = {name: upstreams(name) for name in ("reviews", "ratings", "productpage")}
    endpoints = cases.bookinfo_endpoints(
        servers["reviews"].port, servers["ratings"].port, servers["productpage"].port
    )
    return servers, endpoints


def test_callers_without_a_route_keep_the_default_route(envoy, upstreams, tmp_path):
    """buildSidecarVirtualHostsForVirtualService returns nil for a caller the VirtualService
    has no route for (sourceMatchHTTP), so its sidecar keeps reviews' default route: 200
    from reviews, where the embedded mesh used to answer 404 NR."""
    _, endpoints = _bookinfo_upstreams(upstreams)
    snap = cases.bookinfo(cases.SOURCE_LABELS_ONLY, endpoints, access_log_dir=str(tmp_path))
    port = envoy(translate(snap)).listener_addresses()["0.0.0.0_9080"][1]
    productpage = _identity("default", app="productpage", version="v1")
    ratings = _identity("default", app="ratings", version="v1")
    assert request(port, "reviews:9080", headers=productpage)[2] == "ratings\n"
    assert request(port, "reviews:9080", headers=ratings)[2] == "reviews\n"
    assert request(port, "reviews:9080")[2] == "reviews\n"  # no identity: no labels
    entries = access_entries(tmp_path, 3)
    assert [(e["response_code"], e["route_name"]) for e in entries] == [
        (200, None),
        (200, "default"),
        (200, "default"),
    ]


def test_a_virtual_service_with_only_tcp_routes_leaves_http_to_the_default(envoy, upstreams):
    _, endpoints = _bookinfo_upstreams(upstreams)
    port = envoy(translate(cases.bookinfo(cases.TCP_ONLY, endpoints))).listener_addresses()[
        "0.0.0.0_9080"
    ][1]
    assert request(port, "reviews:9080")[:1] == (200,)


def test_a_port_level_policy_leaves_no_top_level_breaker_on_its_port(envoy, upstreams):
    """GetPortLevelTrafficPolicy: port 8000's port-level entry (load balancer only) replaces
    the top-level maxConnections 1 / http1MaxPendingRequests 1, so six concurrent slow
    requests all pass there; on port 8001 the top-level breaker sheds some (503 UO)."""
    httpbin = upstreams("httpbin")
    ep = Endpoint("httpbin-0", "default", {"app": "httpbin", "version": "v1"}, "127.0.0.1",
                  httpbin.port)  # fmt: skip
    addresses = envoy(translate(seed.snapshot(cases.PORT_LEVEL, [ep]))).listener_addresses()

    def burst(port: int) -> list[int]:
        statuses: list[int] = []
        lock = threading.Lock()

        def call() -> None:
            status = request(port, "httpbin", "/delay/0.5")[0]
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        return statuses

    assert burst(addresses["0.0.0.0_8000"][1]) == [200] * 6
    shed = burst(addresses["0.0.0.0_8001"][1])
    assert 200 in shed and 503 in shed


def test_gateway_virtual_services_are_merged_catch_all_last(envoy, upstreams):
    """SortVHostRoutes in buildGatewayHTTPRouteConfig: the newer VirtualService's /api route
    answers even though the older one, bound to the same host, has a catch-all."""
    web, api = upstreams("web"), upstreams("api")
    snap = seed.snapshot(cases.GATEWAY_MERGE, cases.web_api_endpoints(web.port, api.port))
    port = envoy(translate(snap)).listener_addresses()["gateway_8080"][1]
    assert request(port, "anything.example.com", "/api/items")[2] == "api\n"
    assert request(port, "anything.example.com", "/")[2] == "web\n"


def test_namespace_scoped_gateway_hosts(envoy, upstreams):
    """host.NamesForNamespace: team-b's VirtualService cannot take team-a/shop.example.com."""
    a, b = upstreams("a"), upstreams("b")
    snap = seed.snapshot(cases.NAMESPACED_HOSTS, cases.team_endpoints(a.port, b.port))
    port = envoy(translate(snap)).listener_addresses()["gateway_8080"][1]
    assert request(port, "shop.example.com")[2] == "a\n"
    assert request(port, "docs.example.com")[2] == "b\n"
    assert request(port, "other.example.com")[0] == 404


def test_a_subset_of_a_second_destination_rule_is_served(envoy, upstreams):
    """mergeDestinationRule concatenates the subsets of every rule for the host: the route
    to subset v2 (defined by the newer rule) answers 200, where it used to get 503 NC."""
    v1, v2 = upstreams("reviews-v1"), upstreams("reviews-v2")
    snap = cases.bookinfo(cases.SPLIT_RULES, cases.reviews_versions(v1.port, v2.port))
    port = envoy(translate(snap)).listener_addresses()["0.0.0.0_9080"][1]
    assert [request(port, "reviews")[2] for _ in range(5)] == ["reviews-v2\n"] * 5


def test_a_fault_without_error_type_is_accepted_and_never_fires(envoy, upstreams):
    """TranslateFault drops an abort with no error type (and a delay with no fixedDelay)
    instead of sending it: Envoy accepts the update, the route serves."""
    _, endpoints = _bookinfo_upstreams(upstreams)
    proc = envoy(translate(cases.bookinfo("", endpoints)))
    broken = cases.reviews_vs("""
        - fault:
            abort: {percentage: {value: 100}}
            delay: {percentage: {value: 100}}
          route:
          - destination: {host: reviews}
    """)
    proc.apply(translate(cases.bookinfo(broken, endpoints)))
    port = proc.listener_addresses()["0.0.0.0_9080"][1]
    assert request(port, "reviews")[:1] == (200,)


def test_consistent_hash_keeps_a_user_on_one_host(envoy, upstreams):
    """ConsistentHashToHashPolicy + RING_HASH: one x-user value always reaches one host."""
    v1, v2 = upstreams("reviews-v1"), upstreams("reviews-v2")
    snap = cases.bookinfo(cases.HASH_RULE, cases.reviews_versions(v1.port, v2.port))
    port = envoy(translate(snap)).listener_addresses()["0.0.0.0_9080"][1]
    alice = {request(port, "reviews", headers={"x-user": "alice"})[2] for _ in range(20)}
    assert len(alice) == 1
    everyone = {request(port, "reviews", headers={"x-user": f"user-{i}"})[2] for i in range(30)}
    assert everyone == {"reviews-v1\n", "reviews-v2\n"}


def test_regex_rewrite_direct_bytes_and_the_absolute_fqdn(envoy, upstreams):
    servers, endpoints = _bookinfo_upstreams(upstreams)
    text = cases.reviews_vs("""
        - match: [{uri: {prefix: /bytes}}]
          directResponse: {status: 418, body: {bytes: aGVsbG8=}}
        - rewrite: {uriRegexRewrite: {match: "^/v1/(.*)$", rewrite: "/v2/\\\\1"}}
          route:
          - destination: {host: reviews}
    """)
    port = envoy(translate(cases.bookinfo(text, endpoints))).listener_addresses()["0.0.0.0_9080"][1]
    assert request(port, "reviews", "/bytes")[::2] == (418, "hello")
    assert request(port, "reviews", "/v1/items")[0] == 200
    assert servers["reviews"].seen_paths[-1] == "/v2/items"
    assert request(port, "reviews.default.svc.cluster.local.")[0] == 200


def _location(port: int, path: str, host: str = "old.example.com") -> tuple[int, str]:
    status, headers, _ = request(port, host, path)
    return status, headers.get("location", "")


def test_redirects_carry_the_ports_istiod_gives_them(envoy, upstreams):
    """ApplyRedirect: FROM_REQUEST_PORT -> the server's port, FROM_PROTOCOL_DEFAULT -> none,
    :443 dropped for https, prefixRewrite keeps the rest of the path."""
    web = upstreams("web")
    ep = Endpoint("web-0", "default", {"app": "web"}, "127.0.0.1", web.port)
    snap = seed.snapshot(cases.WEB_SERVICE + "\n---\n" + cases.REDIRECTS, [ep])
    port = envoy(translate(snap)).listener_addresses()["gateway_8080"][1]
    assert _location(port, "/same-port") == (301, "http://new.example.com:8080/same-port")
    assert _location(port, "/default-port") == (301, "http://new.example.com/default-port")
    assert _location(port, "/to-8443") == (301, "https://old.example.com:8443/to-8443")
    assert _location(port, "/to-443") == (301, "https://old.example.com/to-443")
    assert _location(port, "/old/page") == (308, "http://old.example.com/new/page")
    assert request(port, "old.example.com", "/")[2] == "web\n"


def test_https_server_with_its_secret_and_https_redirect(envoy, upstreams, tmp_path):
    """An HTTPS server (tls.mode SIMPLE) terminates TLS with the kubernetes.io/tls Secret
    named by credentialName (BuildListenerTLSContext) and routes like any server; the HTTP
    server's tls.httpsRedirect answers 301 before routing (require_tls ALL)."""
    web = upstreams("web")
    cert = tls.make(tmp_path / "cert")
    secret = tls_secret(cert.cert_pem, cert.key_path.read_bytes(), "shop-credential", "default")
    ep = Endpoint("web-0", "default", {"app": "web"}, "127.0.0.1", web.port)
    snap = seed.snapshot(cases.WEB_SERVICE + "\n---\n" + cases.HTTPS_GATEWAY, [ep])
    snap.secrets = [secret]
    addresses = envoy(translate(snap)).listener_addresses()
    status, body, subject = https_get(addresses["gateway_8443"][1], "shop.example.com")
    assert (status, body, subject) == (200, "web\n", "CN=chaosmesh-api")
    plain = addresses["gateway_8080"][1]
    assert _location(plain, "/cart", "shop.example.com") == (301, "https://shop.example.com/cart")
    assert _location(plain, "/", "legacy.example.com") == (301, "https://legacy.example.com/")
    assert web.hits == 1  # the redirects never reached the upstream
