"""DestinationRule/Service/endpoints -> Envoy clusters, against istiod's exact output."""

from __future__ import annotations

import copy

import pytest

from chaosmesh_ext.mesh.translate import Endpoint, translate
from chaosmesh_ext.mesh.translate.clusters import effective_policy
from tests.support import mesh_seed as seed

UNLIMITED = 4294967295
CANARY_FQDN = "canary.istio-test.svc.cluster.local"


def _endpoint(port: int) -> dict:
    return {
        "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}
    }


def test_canary_gets_a_service_wide_cluster_and_one_per_subset_with_istio_defaults():
    res = translate(seed.snapshot(seed.CANARY, seed.canary_endpoints(10001, 10002)))
    assert {c["name"] for c in res.clusters} == {
        f"outbound|80||{CANARY_FQDN}",
        f"outbound|80|v1|{CANARY_FQDN}",
        f"outbound|80|v2|{CANARY_FQDN}",
    }
    assert res.cluster(f"outbound|80|v1|{CANARY_FQDN}") == {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": f"outbound|80|v1|{CANARY_FQDN}",
        "alt_stat_name": f"outbound|80|v1|{CANARY_FQDN};",
        "type": "STATIC",
        "connect_timeout": "10s",
        "lb_policy": "LEAST_REQUEST",
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": UNLIMITED,
                    "max_pending_requests": UNLIMITED,
                    "max_requests": UNLIMITED,
                    "max_retries": UNLIMITED,
                    "track_remaining": True,
                }
            ]
        },
        "load_assignment": {
            "cluster_name": f"outbound|80|v1|{CANARY_FQDN}",
            "endpoints": [{"lb_endpoints": [_endpoint(10001)]}],
        },
    }
    # The service-wide cluster selects both versions by the Service selector.
    wide = res.cluster(f"outbound|80||{CANARY_FQDN}")
    assert wide["load_assignment"]["endpoints"] == [
        {"lb_endpoints": [_endpoint(10001), _endpoint(10002)]}
    ]
    v2 = res.cluster(f"outbound|80|v2|{CANARY_FQDN}")
    assert v2["load_assignment"]["endpoints"] == [{"lb_endpoints": [_endpoint(10002)]}]


def test_a_subset_with_no_pods_is_still_a_cluster_with_no_endpoints():
    res = translate(seed.snapshot(seed.CANARY, seed.canary_endpoints()[:1]))
    v2 = res.cluster(f"outbound|80|v2|{CANARY_FQDN}")
    assert v2["load_assignment"] == {
        "cluster_name": f"outbound|80|v2|{CANARY_FQDN}",
        "endpoints": [],
    }


def test_pods_in_another_namespace_are_not_endpoints_of_the_service():
    stray = Endpoint("appv1-x", "default", {"app": "v1", "apply": "canary"}, "127.0.0.1", 9)
    res = translate(seed.snapshot(seed.CANARY, [stray]))
    assert res.cluster(f"outbound|80||{CANARY_FQDN}")["load_assignment"]["endpoints"] == []


def test_httpbin_breaker_maps_connection_pool_and_outlier_detection_like_istiod():
    httpbin = Endpoint("httpbin-0", "default", {"app": "httpbin", "version": "v1"}, "127.0.0.1", 7)
    res = translate(seed.snapshot(seed.BREAKER, [httpbin]))
    cluster = res.cluster("outbound|8000||httpbin.default.svc.cluster.local")
    assert cluster["circuit_breakers"] == {
        "thresholds": [
            {
                "max_connections": 1,
                "max_pending_requests": 1,
                "max_requests": UNLIMITED,
                "max_retries": UNLIMITED,
                "track_remaining": True,
            }
        ]
    }
    assert cluster["typed_extension_protocol_options"] == {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "common_http_protocol_options": {"max_requests_per_connection": 1},
            "explicit_http_config": {"http_protocol_options": {}},
        }
    }
    assert cluster["outlier_detection"] == {
        "enforcing_success_rate": 0,
        "consecutive_gateway_failure": 1,
        "enforcing_consecutive_gateway_failure": 100,
        "interval": "1s",
        "base_ejection_time": "180s",
        "max_ejection_percent": 100,
    }
    # minHealthPercent unset = 0: Envoy's panic routing is off, as on a sidecar.
    assert cluster["common_lb_config"] == {"healthy_panic_threshold": {"value": 0.0}}
    # The DR for httpbin does not leak onto fortio's cluster.
    fortio = res.cluster("outbound|8080||fortio.default.svc.cluster.local")
    assert "outlier_detection" not in fortio
    assert fortio["circuit_breakers"]["thresholds"][0]["max_connections"] == UNLIMITED


def test_outlier_fields_zero_and_unset():
    text = seed.BREAKER.replace("consecutiveGatewayErrors: 1", "consecutive5xxErrors: 0").replace(
        "maxEjectionPercent: 100", "maxEjectionPercent: 0"
    )
    cluster = translate(seed.snapshot(text)).cluster(
        "outbound|8000||httpbin.default.svc.cluster.local"
    )
    assert cluster["outlier_detection"] == {
        "enforcing_success_rate": 0,
        "consecutive_5xx": 0,
        "enforcing_consecutive_5xx": 0,
        "interval": "1s",
        "base_ejection_time": "180s",
    }


def _canary_with_subset_policy(policy: dict) -> str:
    docs = seed.objects(seed.CANARY)
    dr = next(d for d in docs if d["kind"] == "DestinationRule")
    dr["spec"]["trafficPolicy"] = {
        "connectionPool": {"tcp": {"maxConnections": 5}, "http": {"http2MaxRequests": 7}},
        "loadBalancer": {"simple": "ROUND_ROBIN"},
    }
    dr["spec"]["subsets"][1]["trafficPolicy"] = policy
    import yaml

    return yaml.safe_dump_all(docs)


def test_a_subset_block_replaces_the_top_level_block_whole():
    text = _canary_with_subset_policy({"connectionPool": {"http": {"http1MaxPendingRequests": 3}}})
    res = translate(seed.snapshot(text))
    v1 = res.cluster(f"outbound|80|v1|{CANARY_FQDN}")["circuit_breakers"]["thresholds"][0]
    v2 = res.cluster(f"outbound|80|v2|{CANARY_FQDN}")["circuit_breakers"]["thresholds"][0]
    assert (v1["max_connections"], v1["max_requests"], v1["max_pending_requests"]) == (
        5,
        7,
        UNLIMITED,
    )
    # v2's connectionPool replaced the top-level one: maxConnections/http2MaxRequests are gone.
    assert (v2["max_connections"], v2["max_requests"], v2["max_pending_requests"]) == (
        UNLIMITED,
        UNLIMITED,
        3,
    )
    # ...but blocks the subset does not set (loadBalancer) are inherited.
    assert res.cluster(f"outbound|80|v2|{CANARY_FQDN}")["lb_policy"] == "ROUND_ROBIN"


def test_port_level_settings_override_the_top_level_for_that_port_only():
    spec = {
        "trafficPolicy": {
            "connectionPool": {"tcp": {"maxConnections": 2}},
            "portLevelSettings": [
                {"port": {"number": 80}, "connectionPool": {"tcp": {"maxConnections": 9}}}
            ],
        }
    }
    assert effective_policy(spec, 80, None)["connectionPool"] == {"tcp": {"maxConnections": 9}}
    assert effective_policy(spec, 81, None)["connectionPool"] == {"tcp": {"maxConnections": 2}}


def test_oldest_destination_rule_wins_for_a_host():
    docs = seed.objects(seed.BREAKER)
    newer = copy.deepcopy(next(d for d in docs if d["kind"] == "DestinationRule"))
    newer["metadata"].update(name="zz-newer", creationTimestamp="2030-01-01T00:00:00Z")
    newer["spec"]["trafficPolicy"] = {"connectionPool": {"tcp": {"maxConnections": 99}}}
    older = next(d for d in docs if d["kind"] == "DestinationRule")
    older["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    snap = seed.snapshot(seed.BREAKER)
    snap.destination_rules = [newer, older]
    cluster = translate(snap).cluster("outbound|8000||httpbin.default.svc.cluster.local")
    assert cluster["circuit_breakers"]["thresholds"][0]["max_connections"] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3m", "180s"), ("1s", "1s"), ("100ms", "0.100s"), ("1.5s", "1.500s"), ("2h", "7200s")],
)
def test_durations_are_spelt_as_protobuf_json(value, expected):
    text = seed.BREAKER.replace("baseEjectionTime: 3m", f"baseEjectionTime: {value}")
    cluster = translate(seed.snapshot(text)).cluster(
        "outbound|8000||httpbin.default.svc.cluster.local"
    )
    assert cluster["outlier_detection"]["base_ejection_time"] == expected


def test_a_bad_duration_names_the_object_and_field():
    text = seed.BREAKER.replace("interval: 1s", "interval: soon")
    with pytest.raises(
        ValueError,
        match=r"DestinationRule default/httpbin: spec\.trafficPolicy"
        r"\.outlierDetection\.interval: not a duration: 'soon'",
    ):
        translate(seed.snapshot(text))
