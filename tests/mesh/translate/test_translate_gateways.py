"""Gateways and listeners: host intersection, names, HCM filters, access logs."""

from __future__ import annotations

import copy

from chaosmesh_ext.mesh.translate import translate
from tests.support import mesh_seed as seed

CANARY_FQDN = "canary.istio-test.svc.cluster.local"


def _gateway_snapshot(server_hosts: list[str], vs_hosts: list[str]):
    snap = seed.snapshot(seed.CANARY, seed.canary_endpoints())
    snap.gateways[0]["spec"]["servers"][0]["hosts"] = server_hosts
    snap.virtual_services[0]["spec"]["hosts"] = vs_hosts
    return snap


def test_canary_gateway_route_config_weights_90_10():
    res = translate(seed.snapshot(seed.CANARY, seed.canary_endpoints(), {"gateway_80": 31000}))
    config = res.route_config("http.80")
    assert config["validate_clusters"] is False
    (host,) = config["virtual_hosts"]
    assert host["name"] == "*:80"
    assert host["domains"] == ["*"]
    (route,) = host["routes"]
    assert route["route"]["weighted_clusters"]["clusters"] == [
        {"name": f"outbound|80|v1|{CANARY_FQDN}", "weight": 90},
        {"name": f"outbound|80|v2|{CANARY_FQDN}", "weight": 10},
    ]
    listener = res.listener("gateway_80")
    assert listener["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 31000}}
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["rds"] == {"route_config_name": "http.80"}
    assert hcm["stat_prefix"] == "gateway_80"


def test_gateway_hosts_intersect_with_virtual_service_hosts():
    res = translate(_gateway_snapshot(["*.example.com"], ["shop.example.com", "other.org"]))
    hosts = res.route_config("http.80")["virtual_hosts"]
    # buildGatewayHTTPRouteConfig: the host alone (the route config ignores ports).
    assert [(h["name"], h["domains"]) for h in hosts] == [
        ("shop.example.com:80", ["shop.example.com"])
    ]
    res = translate(_gateway_snapshot(["shop.example.com"], ["*"]))
    assert [h["name"] for h in res.route_config("http.80")["virtual_hosts"]] == [
        "shop.example.com:80"
    ]


BLACKHOLE = [{"name": "blackhole:80", "domains": ["*"], "routes": []}]


def test_no_host_in_common_means_no_virtual_host_so_envoy_answers_404():
    """buildGatewayHTTPRouteConfig: no virtual host -> a 'blackhole' one without routes."""
    res = translate(_gateway_snapshot(["a.example.com"], ["b.example.com"]))
    assert res.route_config("http.80")["virtual_hosts"] == BLACKHOLE


def test_dot_slash_server_hosts_bind_virtual_services_of_the_gateway_namespace_only():
    """sanitizeServerHostNamespace turns ./h into <gateway ns>/h; NamesForNamespace keeps it
    only for VirtualServices of that namespace."""
    snap = _gateway_snapshot(["./shop.example.com"], ["shop.example.com"])
    vs = snap.virtual_services[0]
    vs["spec"]["gateways"] = ["istio-test/canary-gateway"]
    assert [h["name"] for h in translate(snap).route_config("http.80")["virtual_hosts"]] == [
        "shop.example.com:80"
    ]
    vs["metadata"]["namespace"] = "default"  # bound across namespaces, but ./ excludes it
    assert translate(snap).route_config("http.80")["virtual_hosts"] == BLACKHOLE
    vs["spec"]["gateways"] = ["canary-gateway"]  # now means default/canary-gateway: none
    assert translate(snap).route_config("http.80")["virtual_hosts"] == BLACKHOLE


def test_gateway_virtual_service_is_not_applied_to_sidecars():
    res = translate(seed.snapshot(seed.CANARY, seed.canary_endpoints()))
    (host,) = res.route_config("80")["virtual_hosts"]
    assert [r["name"] for r in host["routes"]] == ["default"]


def test_one_outbound_listener_per_distinct_service_port():
    snap = seed.snapshot(seed.BREAKER + "\n---\n" + seed.TIMEOUT)
    res = translate(snap)
    assert [x["name"] for x in res.listeners] == ["0.0.0.0_80", "0.0.0.0_8000", "0.0.0.0_8080"]
    assert [r["name"] for r in res.routes] == ["80", "8000", "8080"]
    # fortio (8080) and tomcat-svc (8080) share route config "8080".
    names = [h["name"] for h in res.route_config("8080")["virtual_hosts"]]
    assert names == [
        "fortio.default.svc.cluster.local:8080",
        "tomcat-svc.default.svc.cluster.local:8080",
    ]


def test_short_names_are_not_claimed_twice_across_namespaces():
    snap = seed.snapshot(seed.TIMEOUT)
    twin = copy.deepcopy(snap.services[0])
    twin["metadata"]["namespace"] = "prod"
    snap.services.append(twin)
    hosts = translate(snap).route_config("80")["virtual_hosts"]
    domains = [d for h in hosts for d in h["domains"]]
    assert len(domains) == len(set(domains))
    prod = next(h for h in hosts if h["name"].startswith("nginx-svc.prod"))
    assert "nginx-svc" not in prod["domains"] and "nginx-svc.prod" in prod["domains"]


def test_http_filters_and_access_logs():
    res = translate(seed.snapshot(seed.TIMEOUT, access_log_dir="/state"))
    hcm = res.listener("0.0.0.0_80")["filter_chains"][0]["filters"][0]["typed_config"]
    assert [f["name"] for f in hcm["http_filters"]] == [
        "envoy.filters.http.header_to_metadata",
        "envoy.filters.http.fault",
        "envoy.filters.http.cors",
        "envoy.filters.http.router",
    ]
    text, jsonl = hcm["access_log"]
    assert text["typed_config"]["path"] == "/state/access.log"
    fmt = text["typed_config"]["log_format"]["text_format_source"]["inline_string"]
    assert "%UPSTREAM_CLUSTER_RAW%" in fmt and "%UPSTREAM_REQUEST_ATTEMPT_COUNT%" in fmt
    assert jsonl["typed_config"]["path"] == "/state/access.jsonl"
    keys = jsonl["typed_config"]["log_format"]["json_format"]
    assert sorted(keys) == sorted(
        [
            "start_time",
            "upstream_service_time",
            "method",
            "path",
            "authority",
            "response_code",
            "response_flags",
            "duration_ms",
            "upstream_cluster",
            "upstream_host",
            "attempts",
            "route_name",
            "listener",
            "source_workload",
            "source_namespace",
            "bytes_received",
            "bytes_sent",
        ]
    )
    assert keys["listener"] == "0.0.0.0_80"
    assert (
        "access_log"
        not in translate(seed.snapshot(seed.TIMEOUT)).listeners[0]["filter_chains"][0]["filters"][
            0
        ]["typed_config"]
    )
